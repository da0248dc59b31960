"""Profiles: the config and devices an instance takes from each profile it names.

What a profile holds is the admin's grant (API.md, operator policy): only admins write profiles,
so these bodies are not held to the operator policy. Config values and device keys are strings
in LXD; numbers and booleans from a JSON client are sent as strings (like instance bodies).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import NAME_PATTERN, ErrorBody, LXDObject
from app.schemas.instances import ConfigMap, DeviceMap

ProfileNameField = Annotated[str, Field(pattern=NAME_PATTERN, examples=["web-limits"])]
DESCRIPTION_MAX = 4096

_LIMITS_EXAMPLE: dict[str, Any] = {"limits.cpu": "2", "limits.memory": "512MiB"}
_ROOT_EXAMPLE: dict[str, Any] = {"root": {"type": "disk", "path": "/", "pool": "default"}}


class ProfileCreate(BaseModel):
    name: ProfileNameField
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    config: ConfigMap = Field(default_factory=dict, description="LXD instance config keys")
    devices: DeviceMap = Field(default_factory=dict)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "web-limits",
                    "description": "Small web servers",
                    "config": _LIMITS_EXAMPLE,
                    "devices": _ROOT_EXAMPLE,
                }
            ]
        },
    )


class ProfileUpdate(BaseModel):
    """PUT: replaces the profile's config, devices and description (what is left out goes)."""

    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    config: ConfigMap = Field(default_factory=dict)
    devices: DeviceMap = Field(default_factory=dict)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"config": _LIMITS_EXAMPLE, "devices": {}, "description": "web"}]
        },
    )


class ProfilePatch(BaseModel):
    """PATCH: merged by LXD, config key by key and devices by name. A device cannot be removed
    this way (LXD 5.0 answers `null` with a 500): PUT the profile without it."""

    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    config: ConfigMap | None = None
    devices: DeviceMap | None = None

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"config": {"limits.cpu": "4"}}]}
    )


class ProfileRename(BaseModel):
    name: ProfileNameField = Field(description="The new name")

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "web-large"}]}
    )


class ProfilePublic(LXDObject):
    """A profile as LXD describes it (`GET /1.0/profiles/{name}`); other fields pass through."""

    name: str
    description: str = ""
    config: dict[str, str] = Field(default_factory=dict)
    devices: dict[str, dict[str, str]] = Field(default_factory=dict)
    used_by: list[str] | None = Field(
        default=None, description="The instances that use the profile (LXD URLs)"
    )


class ProfileUser(BaseModel):
    name: str = Field(examples=["web1"])
    project: str = Field(examples=["default"])


class ProfileInUseBody(ErrorBody):
    """The 409 of deleting a profile that instances still use."""

    instances: list[ProfileUser] = Field(description="The instances that use the profile")
