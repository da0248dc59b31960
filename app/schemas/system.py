"""What `/system/info` tells about the LXD server: a whitelist of LXD's `GET /1.0` fields.

Only the fields named here leave the API. LXD's certificate, its fingerprint, its addresses and
its server config (which can hold secrets) are never copied, whatever newer LXD versions add.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class StorageDriver(BaseModel):
    name: str
    version: str | None = None
    remote: bool | None = None


class SystemInfo(BaseModel):
    connection_mode: str = Field(description="How this API reaches LXD: local or remote")
    api_version: str | None = None
    api_status: str | None = None
    api_extensions_count: int = Field(description="How many API extensions LXD supports")
    server: str | None = Field(default=None, examples=["lxd"])
    server_name: str | None = None
    server_version: str | None = Field(default=None, examples=["5.21.1"])
    server_clustered: bool | None = None
    driver: str | None = Field(default=None, examples=["lxc | qemu"])
    driver_version: str | None = None
    storage: str | None = Field(
        default=None, description="Storage drivers in use", examples=["dir"]
    )
    storage_version: str | None = None
    storage_supported_drivers: list[StorageDriver] = []
    kernel: str | None = None
    kernel_version: str | None = None
    kernel_architecture: str | None = None
    kernel_features: dict[str, str] = {}
    architectures: list[str] = []
    os_name: str | None = None
    os_version: str | None = None
    firewall: str | None = None

    @classmethod
    def from_lxd(cls, server: dict[str, Any], *, connection_mode: str) -> SystemInfo:
        env = server.get("environment") or {}

        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        drivers = [
            StorageDriver(
                name=str(item.get("Name") or item.get("name") or ""),
                version=text(item.get("Version") or item.get("version")),
                remote=item.get("Remote", item.get("remote")),
            )
            for item in env.get("storage_supported_drivers") or []
            if isinstance(item, dict)
        ]
        features = env.get("kernel_features") or {}
        return cls(
            connection_mode=connection_mode,
            api_version=text(server.get("api_version")),
            api_status=text(server.get("api_status")),
            api_extensions_count=len(server.get("api_extensions") or []),
            server=text(env.get("server")),
            server_name=text(env.get("server_name")),
            server_version=text(env.get("server_version")),
            server_clustered=env.get("server_clustered"),
            driver=text(env.get("driver")),
            driver_version=text(env.get("driver_version")),
            storage=text(env.get("storage")),
            storage_version=text(env.get("storage_version")),
            storage_supported_drivers=drivers,
            kernel=text(env.get("kernel")),
            kernel_version=text(env.get("kernel_version")),
            kernel_architecture=text(env.get("kernel_architecture")),
            kernel_features={str(k): str(v) for k, v in features.items()}
            if isinstance(features, dict)
            else {},
            architectures=[str(a) for a in env.get("architectures") or []],
            os_name=text(env.get("os_name")),
            os_version=text(env.get("os_version")),
            firewall=text(env.get("firewall")),
        )
