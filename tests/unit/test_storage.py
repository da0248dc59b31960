"""Storage and network routes against a fake LXD: input checks made before LXD is asked, and
LXD 5.0's odd answers (400 for duplicates and objects in use, 500 for input mistakes) turned
into the statuses a client expects. The real daemon is exercised in tests/integration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.schemas.storage import VolumeCreate, VolumeResize, config_strings
from tests.support.auth import auth_for
from tests.support.lxd_replies import error, sync

Handler = Callable[[httpx.Request], httpx.Response]


async def call(
    make_unit_app: Callable[..., Any],
    handler: Handler,
    method: str,
    path: str,
    json: Any = None,
    role: str = "admin",
) -> httpx.Response:
    app = await make_unit_app(lxd_handler=handler)
    headers = (await auth_for(app)).headers(role)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.request(method, path, json=json, headers=headers)


def never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"LXD must not be asked: {request.method} {request.url}")


@pytest.mark.parametrize("size", ["1B", "10GiB", "512MiB", "3TB", "7kB", "100KiB"])
def test_good_sizes(size: str) -> None:
    assert VolumeResize(size=size).size == size


@pytest.mark.parametrize(
    "size", ["", "0", "10", "1.5GiB", "-1GiB", "2 GiB", "2gib", "GiB", "1e3MB", "1 ", "1GiB\n"]
)
def test_bad_sizes(size: str) -> None:
    with pytest.raises(ValidationError):
        VolumeResize(size=size)
    if size not in ("", "0"):  # in a config, "0" and "" mean no limit
        with pytest.raises(ValidationError):
            VolumeCreate(name="v", config={"size": size})


def test_config_values_become_strings() -> None:
    assert config_strings({"a": True, "b": 3, "c": "x", "size": "0"}) == {
        "a": "true",
        "b": "3",
        "c": "x",
        "size": "0",
    }


async def test_bad_size_never_reaches_lxd(make_unit_app: Callable[..., Any]) -> None:
    reply = await call(
        make_unit_app, never, "POST", "/api/v1/storage/pools/p/volumes/v/resize", {"size": "9x"}
    )
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_error"


async def test_volume_in_use_is_409_naming_users(make_unit_app: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return error(400, "The storage volume is still in use")
        used_by = ["/1.0/instances/web1", "/1.0/profiles/shared"]
        return sync({"name": "v", "used_by": used_by})

    reply = await call(make_unit_app, handler, "DELETE", "/api/v1/storage/pools/p/volumes/v")
    assert reply.status_code == 409
    assert reply.json()["code"] == "in_use"
    assert "instance web1" in reply.json()["detail"]
    assert "profile shared" in reply.json()["detail"]


async def test_pool_source_missing_is_400(make_unit_app: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(500, "Source path '/nope' doesn't exist")

    body = {"name": "p1", "driver": "dir", "config": {"source": "/nope"}}
    reply = await call(make_unit_app, handler, "POST", "/api/v1/storage/pools", body)
    assert reply.status_code == 400
    assert "/nope" in reply.json()["detail"]


async def test_network_duplicate_400_is_409(make_unit_app: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(400, "The network already exists")

    reply = await call(make_unit_app, handler, "POST", "/api/v1/networks", {"name": "br1"})
    assert reply.status_code == 409
    assert reply.json()["code"] == "conflict"


@pytest.mark.parametrize(("managed", "status"), [(False, 400), (None, 404)])
async def test_leases_of_a_host_interface(
    make_unit_app: Callable[..., Any], managed: bool | None, status: int
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/leases") or managed is None:
            return error(404, "Network not found")
        return sync({"name": "eth0", "managed": managed, "type": "physical"})

    reply = await call(make_unit_app, handler, "GET", "/api/v1/networks/eth0/leases")
    assert reply.status_code == status
    if status == 400:
        assert reply.json()["code"] == "network_not_managed"


async def test_lxd_unreachable_is_503(make_unit_app: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    reply = await call(make_unit_app, handler, "GET", "/api/v1/networks", role="viewer")
    assert reply.status_code == 503
    assert reply.json()["code"] == "lxd_unavailable"


async def test_block_volume_shrink_500_is_400(make_unit_app: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(500, "Block volumes cannot be shrunk: Cannot be shrunk")

    reply = await call(
        make_unit_app, handler, "POST", "/api/v1/storage/pools/p/volumes/v/resize", {"size": "1MiB"}
    )
    assert reply.status_code == 400
    assert "shrunk" in reply.json()["detail"]
