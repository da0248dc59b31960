"""Instances: create/update bodies, lifecycle actions and the objects LXD returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.schemas.common import (
    FINGERPRINT_PATTERN,
    NAME_PATTERN,
    InstanceNameField,
    LXDObject,
)

InstanceType = Literal["container", "virtual-machine"]
StateAction = Literal["start", "stop", "restart", "freeze", "unfreeze"]
# LXD's own format for `instance_type`: a cloud type (`t2.micro`, `aws:t2.micro`) or `cN-mN`.
INSTANCE_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
CONFIG_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,255}$"
DEVICE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


def _config_values(value: Any) -> Any:
    """LXD's config maps hold strings only: accept 2, 1.5 and true from a JSON client and send
    "2", "1.5" and "true" (LXD would refuse the numbers with a decode error)."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            out[key] = item
    return out


ConfigMap = Annotated[
    dict[Annotated[str, Field(pattern=CONFIG_KEY_PATTERN)], str],
    BeforeValidator(_config_values),
]
DeviceMap = Annotated[
    dict[
        Annotated[str, Field(pattern=DEVICE_NAME_PATTERN)],
        Annotated[dict[str, str], BeforeValidator(_config_values)],
    ],
    Field(description="Devices by name, each a map of LXD device keys (`type`, `path`, ...)"),
]
ProfileNames = list[Annotated[str, Field(pattern=NAME_PATTERN)]]


class InstanceSource(BaseModel):
    """Where a new instance comes from. Other LXD source keys (`mode`, `instance_only`,
    `project`, ...) pass through."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"type": "image", "alias": "busybox"},
                {
                    "type": "image",
                    "alias": "22.04",
                    "server": "https://cloud-images.ubuntu.com/releases",
                    "protocol": "simplestreams",
                },
                {"type": "copy", "source": "web1"},
                {"type": "none"},
            ]
        },
    )

    type: Literal["image", "none", "copy"] = Field(
        description="`image`: from an image; `none`: empty; `copy`: from another instance"
    )
    alias: str | None = Field(default=None, max_length=255, description="Image alias (image)")
    fingerprint: str | None = Field(
        default=None, pattern=FINGERPRINT_PATTERN, description="Image fingerprint (image)"
    )
    properties: dict[str, str] | None = Field(
        default=None, description="Image properties to match (image)"
    )
    server: str | None = Field(
        default=None, max_length=2048, description="Remote image server URL (image)"
    )
    protocol: Literal["simplestreams", "lxd"] | None = Field(
        default=None, description="Protocol of the remote image server"
    )
    certificate: str | None = Field(default=None, description="PEM of a private `lxd` server")
    source: str | None = Field(
        default=None,
        max_length=255,
        description="Instance (or `instance/snapshot`) to copy from (copy)",
    )

    @model_validator(mode="after")
    def _complete(self) -> InstanceSource:
        # LXD 5.0 answers a missing alias/fingerprint with a 500: refuse it here as a 422.
        if self.type == "image" and not (self.alias or self.fingerprint or self.properties):
            raise ValueError("source type 'image' needs an alias, a fingerprint or properties")
        if self.type == "copy" and not self.source:
            raise ValueError("source type 'copy' needs `source`, the instance to copy")
        if self.server and not self.protocol:
            self.protocol = "simplestreams"
        return self


class InstanceFields(BaseModel):
    """What PUT replaces and PATCH merges (LXD's `InstancePut`)."""

    model_config = ConfigDict(extra="forbid")

    architecture: str | None = Field(default=None, max_length=64, examples=["x86_64"])
    config: ConfigMap | None = Field(
        default=None, description="LXD config keys", examples=[{"limits.cpu": "2"}]
    )
    devices: DeviceMap | None = None
    ephemeral: bool | None = Field(default=None, description="Deleted when stopped")
    profiles: ProfileNames | None = Field(default=None, examples=[["default"]])
    description: str | None = Field(default=None, max_length=4096)

    def lxd_body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"start"})


class InstanceCreate(InstanceFields):
    """`POST /instances`: LXD's create body, plus `start`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "web1",
                    "source": {"type": "image", "alias": "busybox"},
                    "config": {"limits.cpu": "1"},
                    "start": True,
                },
                {"name": "empty1", "source": {"type": "none"}, "type": "container"},
            ]
        },
    )

    name: InstanceNameField
    source: InstanceSource
    type: InstanceType | None = Field(default=None, description="Default: container")
    instance_type: str | None = Field(
        default=None,
        pattern=INSTANCE_TYPE_PATTERN,
        description="Cloud instance type or `cN-mN` (N CPUs, N GiB)",
        examples=["c2-m1"],
    )
    stateful: bool | None = None
    start: bool = Field(default=False, description="Start the instance once it is created")


class InstanceUpdate(InstanceFields):
    """`PUT /instances/{name}`: the full writable state; what is left out is reset."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {"limits.memory": "256MiB"},
                    "devices": {},
                    "profiles": ["default"],
                    "ephemeral": False,
                    "description": "web server",
                }
            ]
        },
    )

    stateful: bool | None = None


class InstancePatch(InstanceFields):
    """`PATCH /instances/{name}`: merged into the instance (config and devices key by key)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"config": {"limits.cpu": "2"}}, {"description": "db"}]},
    )


class InstanceRename(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "web2"}]})

    name: InstanceNameField


class LifecycleOptions(BaseModel):
    """Options of a state change (the body of the POST shortcuts, all optional)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"force": True, "timeout": 30}]}
    )

    force: bool = Field(default=False, description="stop/restart: kill instead of a clean stop")
    timeout: int = Field(
        default=-1, ge=-1, le=86400, description="Seconds for a clean stop (-1: LXD's default)"
    )
    stateful: bool = Field(default=False, description="Save/restore the running state (CRIU)")


class StateChange(LifecycleOptions):
    """`PUT /instances/{name}/state`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"action": "start"}, {"action": "stop", "force": True, "timeout": 30}]
        },
    )

    action: StateAction


class InstancePublic(LXDObject):
    """An instance as LXD describes it (`GET /1.0/instances/{name}`); other fields pass through."""

    name: str
    status: str | None = Field(default=None, examples=["Running"])
    status_code: int | None = None
    type: str | None = Field(default=None, examples=["container"])
    architecture: str | None = None
    config: dict[str, str] | None = None
    devices: dict[str, dict[str, str]] | None = None
    profiles: list[str] | None = None
    ephemeral: bool | None = None
    stateful: bool | None = None
    description: str | None = None
    created_at: str | None = None
    last_used_at: str | None = None
    location: str | None = None
    project: str | None = None


class InstanceState(LXDObject):
    """`GET /1.0/instances/{name}/state`: status, cpu, memory, disk, network (with addresses),
    processes."""

    status: str = Field(examples=["Running"])
    status_code: int
    cpu: dict[str, Any] | None = Field(default=None, examples=[{"usage": 12345678}])
    memory: dict[str, Any] | None = Field(default=None, examples=[{"usage": 1048576}])
    disk: dict[str, Any] | None = None
    network: dict[str, Any] | None = Field(
        default=None,
        description="Interfaces by name: addresses, counters, hwaddr, mtu, state",
    )
    pid: int | None = None
    processes: int | None = None
