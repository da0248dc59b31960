"""`/system/info` and `/system/health` against the real LXD, in both connection modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

INFO = "/api/v1/system/info"
HEALTH = "/api/v1/system/health"

# Nothing that names or carries key material may come out, at any depth.
FORBIDDEN_KEY_PARTS = ("certificate", "cert", "key", "fingerprint", "password", "secret")


def _walk_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _walk_keys(v)]
    if isinstance(value, list):
        return [k for item in value for k in _walk_keys(item)]
    return []


async def test_system_info_shape(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], settings: Any
) -> None:
    reply = await client.get(INFO, headers=auth_headers("viewer"))
    assert reply.status_code == 200, reply.text
    info = reply.json()
    assert info["connection_mode"] == str(settings.LXD_CONNECTION_MODE)
    assert info["api_version"] == "1.0"
    assert isinstance(info["api_extensions_count"], int)
    assert info["api_extensions_count"] > 10
    assert info["server_version"]
    assert info["kernel"] == "Linux"
    assert info["kernel_version"]
    assert info["kernel_architecture"]
    assert isinstance(info["kernel_features"], dict)
    assert isinstance(info["architectures"], list)
    assert info["architectures"]
    assert info["storage"] is not None
    assert isinstance(info["storage_supported_drivers"], list)
    for driver in info["storage_supported_drivers"]:
        assert set(driver) == {"name", "version", "remote"}


async def test_system_info_carries_no_certificate_or_key(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    reply = await client.get(INFO, headers=auth_headers("viewer"))
    assert reply.status_code == 200
    keys = [k.lower() for k in _walk_keys(reply.json())]
    leaked = [k for k in keys if any(part in k for part in FORBIDDEN_KEY_PARTS)]
    assert not leaked, leaked
    assert "BEGIN CERTIFICATE" not in reply.text
    assert "PRIVATE KEY" not in reply.text


async def test_system_health(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], settings: Any
) -> None:
    reply = await client.get(HEALTH, headers=auth_headers("viewer"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert body["mode"] == str(settings.LXD_CONNECTION_MODE)
    assert body["api_version"] == "1.0"
    deep = (await client.get("/health")).json()
    assert deep["lxd"] == body


async def test_system_routes_need_a_viewer(client: httpx.AsyncClient) -> None:
    for path in (INFO, HEALTH):
        reply = await client.get(path)
        assert reply.status_code == 401
