"""Networks: managed networks (bridge, macvlan, sriov, ovn, physical), state, leases, NICs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.common import InstanceNameField, LXDObject
from app.schemas.storage import ConfigMap, DeviceNameField, config_strings

# Network names end up as kernel interface names (bridges): no colon, no separators; LXD itself
# checks the length for the network's type (15 for a bridge).
NETWORK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
INTERFACE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$"
NETWORK_TYPE_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"

NetworkNameField = Annotated[str, Field(pattern=NETWORK_NAME_PATTERN, examples=["lxdbr1"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("config", mode="before", check_fields=False)
    @classmethod
    def _config(cls, value: Any) -> Any:
        return config_strings(value)


class NetworkCreate(_Body):
    name: NetworkNameField
    type: str | None = Field(
        default=None,
        pattern=NETWORK_TYPE_PATTERN,
        description="bridge (LXD's default), macvlan, sriov, ovn, physical",
    )
    config: ConfigMap = Field(default_factory=dict, description="Network options, passed through")
    description: str = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "lxdbr1",
                    "type": "bridge",
                    "config": {"ipv4.address": "none", "ipv6.address": "none"},
                    "description": "Isolated bridge",
                }
            ]
        },
    )


class NetworkUpdate(_Body):
    """PUT: replaces the network's config and description."""

    config: ConfigMap = Field(default_factory=dict)
    description: str = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"config": {"ipv4.address": "none", "ipv6.address": "none"}}]
        },
    )


class NetworkPatch(_Body):
    """PATCH: merges the given config keys and description."""

    config: ConfigMap | None = None
    description: str | None = None

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"config": {"bridge.mtu": "1400"}}]}
    )


class NetworkRename(_Body):
    name: NetworkNameField = Field(description="The new name")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "lxdbr2"}]})


class NetworkPublic(LXDObject):
    name: str
    type: str | None = None
    managed: bool | None = None
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    used_by: list[str] | None = None
    status: str | None = None
    locations: list[str] | None = None


class NetworkState(LXDObject):
    """`GET /1.0/networks/{name}/state` as LXD sends it."""

    state: str | None = None
    hwaddr: str | None = None
    mtu: int | None = None
    type: str | None = None
    addresses: list[dict[str, Any]] | None = None
    counters: dict[str, Any] | None = None


class NetworkLease(LXDObject):
    hostname: str | None = None
    hwaddr: str | None = None
    address: str | None = None
    type: str | None = None
    location: str | None = None


class NicAttach(_Body):
    instance: InstanceNameField
    device: DeviceNameField | None = Field(
        default=None, description="Device name (default: the network's name, made unique)"
    )
    interface: str | None = Field(
        default=None,
        pattern=INTERFACE_NAME_PATTERN,
        description="Interface name inside the instance (default: the first free ethN)",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instance": "web1", "interface": "eth1"}]},
    )
