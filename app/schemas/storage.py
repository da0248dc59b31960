"""Storage pools, custom volumes, and the device attachments they share with networks."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.common import InstanceNameField, LXDObject, ObjectNameField

# LXD's byte sizes: an integer and a unit (LXD 5.0 answers anything else with a 500).
SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
SIZE_PATTERN = r"^[1-9][0-9]{0,18}(?:" + "|".join(SIZE_UNITS) + r")$"
_SIZE_RE = re.compile(SIZE_PATTERN)
SIZE_KEYS = ("size", "volume.size")
# Instance device names and Linux interface names as LXD accepts them.
DEVICE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DRIVER_PATTERN = r"^[a-z][a-z0-9]{0,31}$"

DeviceNameField = Annotated[
    str, Field(pattern=DEVICE_NAME_PATTERN, description="Device name in the instance")
]
SizeField = Annotated[
    str,
    Field(
        pattern=SIZE_PATTERN,
        description="An integer and a unit: " + ", ".join(SIZE_UNITS),
        examples=["2GiB"],
    ),
]
ConfigMap = dict[str, str]


def config_strings(value: Any) -> Any:
    """LXD config maps are strings only: accept numbers and booleans the way `lxc` writes them,
    and refuse a size LXD would answer with a 500."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        sized = key in SIZE_KEYS and isinstance(item, str) and item not in ("", "0")
        if sized and not _SIZE_RE.fullmatch(item):
            raise ValueError(
                f"config.{key} must be an integer and a unit ({', '.join(SIZE_UNITS)}), "
                f"e.g. 10GiB; got {item[:40]!r}"
            )
        out[key] = item
    return out


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ConfigBody(_Body):
    @field_validator("config", mode="before", check_fields=False)
    @classmethod
    def _config(cls, value: Any) -> Any:
        return config_strings(value)


# --- pools ------------------------------------------------------------------------------------
class PoolCreate(_ConfigBody):
    name: ObjectNameField
    driver: str = Field(pattern=DRIVER_PATTERN, description="dir, btrfs, lvm, zfs, ceph...")
    config: ConfigMap = Field(default_factory=dict, description="Driver options, passed through")
    description: str = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "data",
                    "driver": "dir",
                    "config": {"source": "/srv/lxd/data"},
                    "description": "Bulk data",
                }
            ]
        },
    )


class PoolUpdate(_ConfigBody):
    """PUT: replaces the pool's config and description (keep `source` in it)."""

    config: ConfigMap = Field(default_factory=dict)
    description: str = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"config": {"source": "/srv/lxd/data"}, "description": "Bulk data"}]
        },
    )


class PoolPatch(_ConfigBody):
    """PATCH: merges the given config keys (an empty value unsets one) and description."""

    config: ConfigMap | None = None
    description: str | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"config": {"volume.size": "5GiB"}}]},
    )


class PoolPublic(LXDObject):
    name: str
    driver: str
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    used_by: list[str] | None = None
    status: str | None = None
    locations: list[str] | None = None


# --- volumes ----------------------------------------------------------------------------------
class VolumeCreate(_ConfigBody):
    name: ObjectNameField
    content_type: Literal["filesystem", "block"] = "filesystem"
    config: ConfigMap = Field(default_factory=dict, description="Volume options, e.g. size")
    description: str = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "data1", "content_type": "filesystem", "config": {"size": "2GiB"}}
            ]
        },
    )


class VolumeUpdate(_ConfigBody):
    """PUT: replaces the volume's config and description."""

    config: ConfigMap = Field(default_factory=dict)
    description: str = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"config": {"size": "3GiB"}, "description": "logs"}]},
    )


class VolumePatch(_ConfigBody):
    """PATCH: merges the given config keys and description."""

    config: ConfigMap | None = None
    description: str | None = None

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"description": "logs"}]}
    )


class VolumePublic(LXDObject):
    name: str
    type: str = "custom"
    content_type: str | None = None
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    used_by: list[str] | None = None
    location: str | None = None
    project: str | None = None


class RenameBody(_Body):
    name: ObjectNameField = Field(description="The new name")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "new"}]})


class VolumeResize(_Body):
    size: SizeField

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"size": "10GiB"}]})


# --- device attachments (volumes and NICs) ------------------------------------------------------
class VolumeAttach(_Body):
    instance: InstanceNameField
    path: str = Field(
        pattern=r"^/[^\x00]{0,4095}$", description="Mount point inside the instance (absolute)"
    )
    device: DeviceNameField | None = Field(
        default=None, description="Device name (default: the volume's name, made unique)"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instance": "web1", "path": "/mnt/data"}]},
    )


class DetachBody(_Body):
    instance: InstanceNameField
    device: DeviceNameField | None = Field(
        default=None, description="Device to remove (default: the one using this object)"
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"instance": "web1"}]}
    )


class DeviceAttachment(BaseModel):
    """What an attach or detach changed in the instance's devices."""

    instance: str
    device: str = Field(description="The device's name in the instance")
    config: dict[str, str] = Field(description="The device as LXD stores it")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instance": "web1",
                    "device": "data1",
                    "config": {"type": "disk", "pool": "data", "source": "data1", "path": "/mnt"},
                }
            ]
        }
    )
