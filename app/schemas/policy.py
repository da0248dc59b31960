"""The operator policy: `GET /policy`, `POST /policy/check` and the 403 a refusal answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import PROJECT_PATTERN, ErrorBody
from app.schemas.instances import ConfigMap, DeviceMap, ProfileNames


class PolicyViolationItem(BaseModel):
    field: str = Field(examples=["config.security.privileged"])
    reason: str = Field(examples=["refused (a true value): a privileged container's root is ..."])


class PolicyErrorBody(ErrorBody):
    """A 403 `policy_violation`: the usual error fields and every violation at once."""

    violations: list[PolicyViolationItem]


class PolicyConfigRule(BaseModel):
    key: str = Field(examples=["security.privileged"], description="`raw.*`: every such key")
    refused: Literal["true values", "any value"]
    why: str
    mirrors: str = Field(description="The LXD `restricted.*` project key it mirrors")


class PolicyDeviceRule(BaseModel):
    type: str = Field(examples=["disk"])
    allowed: bool
    rule: str = Field(description="When the type is allowed, or `refused`")
    why: str
    mirrors: str


class PolicyPublic(BaseModel):
    """The policy in force."""

    mode: Literal["default", "unrestricted"]
    applies_to: str = Field(examples=["every role below admin"])
    held: bool = Field(description="Whether the policy holds the caller")
    refused_config: list[PolicyConfigRule]
    devices: list[PolicyDeviceRule]
    other_device_types: Literal["refused"]
    source_types: list[str]
    refused_source_types: list[str]
    image_servers: list[str] = Field(description="The `source.server` values non-admins may use")
    compression_algorithms: list[str] = Field(description="Backup `compression_algorithm` values")


class PolicySource(BaseModel):
    """An instance source to check, as `POST /instances` takes it (`type` is not limited here,
    so that a refused type is reported as a violation)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64, examples=["image"])
    alias: str | None = Field(default=None, max_length=255)
    server: str | None = Field(default=None, max_length=2048)
    source: str | None = Field(
        default=None, max_length=255, description="copy: the instance (or instance/snapshot)"
    )
    project: str | None = Field(default=None, pattern=PROJECT_PATTERN)


class PolicyCheck(BaseModel):
    """`POST /policy/check`: what an instance write would set."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {"security.privileged": "true", "limits.cpu": "1"},
                    "devices": {"host": {"type": "disk", "source": "/", "path": "/host"}},
                },
                {"source": {"type": "copy", "source": "web1"}},
            ]
        },
    )

    config: ConfigMap | None = None
    devices: DeviceMap | None = None
    source: PolicySource | None = None
    profiles: ProfileNames | None = Field(
        default=None, description="Always allowed: profiles are admin-owned"
    )


class PolicyCheckResult(BaseModel):
    """`POST /policy/check`: what the policy says about the write, for the caller."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "allowed": False,
                    "violations": [
                        {
                            "field": "config.security.privileged",
                            "reason": "refused (a true value): a privileged container's root "
                            "is root on the LXD host",
                        },
                        {
                            "field": "devices.host.source",
                            "reason": "a disk must come from a storage pool (`pool`): without "
                            "one, `source` is a path on the LXD host",
                        },
                    ],
                },
                {"allowed": True, "violations": []},
            ]
        }
    )

    allowed: bool
    violations: list[PolicyViolationItem]
