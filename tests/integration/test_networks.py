"""Networks against the real LXD, in both connection modes: CRUD with ETag passthrough, rename,
state, leases, host interfaces, bad input. What changed is read back from LXD with `lxd_raw`.

Networks made here have no addresses (`ipv4.address=none`, `ipv6.address=none`), short unique
names (bridge names are global to the kernel) and are always deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

API = "/api/v1/networks"
NO_ADDRESSES = {"ipv4.address": "none", "ipv6.address": "none"}
Headers = Callable[..., dict[str, str]]


def net_name() -> str:
    return f"tn{uuid.uuid4().hex[:8]}"


async def lxd_network(raw: httpx.AsyncClient, name: str) -> Any:
    reply = await raw.get(f"/1.0/networks/{name}")
    return reply.json()["metadata"] if reply.status_code == 200 else None


async def host_interface(raw: httpx.AsyncClient) -> str:
    """An interface of the host that LXD lists but does not manage (`lo` is always there)."""
    reply = await raw.get("/1.0/networks", params={"recursion": 1})
    unmanaged = [n["name"] for n in reply.json()["metadata"] if not n["managed"]]
    return "lo" if "lo" in unmanaged else unmanaged[0]


@pytest.fixture
async def made(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Names of networks a test creates (or renames to); deleted afterwards whatever happens.
    Dependent networks (macvlan on a bridge) go first: list them last."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in reversed(names):
            await lxd_raw.delete(f"/1.0/networks/{name}")


@pytest.fixture
async def network(lxd_raw: httpx.AsyncClient, made: list[str]) -> str:
    """An address-less bridge made straight through LXD."""
    name = net_name()
    made.append(name)
    reply = await lxd_raw.post("/1.0/networks", json={"name": name, "config": NO_ADDRESSES})
    assert reply.status_code == 201, reply.text
    return name


async def test_create_get_list_delete(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, made: list[str]
) -> None:
    admin, viewer = auth_headers("admin"), auth_headers("viewer")
    name = net_name()
    made.append(name)
    body = {"name": name, "type": "bridge", "config": NO_ADDRESSES, "description": "test"}
    created = await client.post(API, json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/{name}"
    assert created.json()["managed"] is True
    in_lxd = await lxd_network(lxd_raw, name)
    assert in_lxd["type"] == "bridge"
    assert in_lxd["config"]["ipv4.address"] == "none"
    assert in_lxd["description"] == "test"

    again = await client.post(API, json=body, headers=admin)
    assert again.status_code == 409, again.text  # LXD 5.0 says 400
    assert again.json()["code"] == "conflict"
    host = await host_interface(lxd_raw)
    clash = await client.post(API, json={**body, "name": host}, headers=admin)
    assert clash.status_code == 409, clash.text  # LXD 5.0 says 500

    got = await client.get(f"{API}/{name}", headers=viewer)
    assert got.status_code == 200
    assert got.headers.get("etag")
    listed = await client.get(API, headers=viewer)
    assert name in [n["name"] for n in listed.json()["items"]]
    names = await client.get(API, params={"expand": "false"}, headers=viewer)
    assert name in names.json()["items"]

    deleted = await client.delete(f"{API}/{name}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert await lxd_network(lxd_raw, name) is None
    assert (await client.get(f"{API}/{name}", headers=viewer)).status_code == 404


async def test_other_types(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    network: str,
    made: list[str],
) -> None:
    name = net_name()
    made.append(name)
    body = {"name": name, "type": "macvlan", "config": {"parent": network}}
    created = await client.post(API, json=body, headers=auth_headers("admin"))
    assert created.status_code == 201, created.text
    in_lxd = await lxd_network(lxd_raw, name)
    assert in_lxd["type"] == "macvlan"
    assert in_lxd["config"]["parent"] == network
    unknown = await client.post(
        API, json={"name": net_name(), "type": "nosuch"}, headers=auth_headers("admin")
    )
    assert unknown.status_code == 400, unknown.text


async def test_put_patch_rename(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    network: str,
    made: list[str],
) -> None:
    admin = auth_headers("admin")
    etag = (await client.get(f"{API}/{network}", headers=admin)).headers["etag"]
    patched = await client.patch(
        f"{API}/{network}",
        json={"config": {"bridge.mtu": "1400"}, "description": "patched"},
        headers={**admin, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    in_lxd = await lxd_network(lxd_raw, network)
    assert in_lxd["config"] == {**NO_ADDRESSES, "bridge.mtu": "1400"}
    assert in_lxd["description"] == "patched"

    stale = await client.put(
        f"{API}/{network}", json={"config": NO_ADDRESSES}, headers={**admin, "If-Match": etag}
    )
    assert stale.status_code == 412, stale.text
    replaced = await client.put(
        f"{API}/{network}", json={"config": NO_ADDRESSES, "description": "put"}, headers=admin
    )
    assert replaced.status_code == 200, replaced.text
    in_lxd = await lxd_network(lxd_raw, network)
    assert "bridge.mtu" not in in_lxd["config"]
    assert in_lxd["description"] == "put"

    bad_key = await client.patch(f"{API}/{network}", json={"config": {"no": "1"}}, headers=admin)
    assert bad_key.status_code == 400, bad_key.text
    bad_value = await client.patch(
        f"{API}/{network}", json={"config": {"bridge.mtu": "abc"}}, headers=admin
    )
    assert bad_value.status_code == 400, bad_value.text  # LXD 5.0 says 500

    new = net_name()
    made.append(new)
    renamed = await client.post(f"{API}/{network}/rename", json={"name": new}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == new
    assert await lxd_network(lxd_raw, network) is None
    assert (await lxd_network(lxd_raw, new))["description"] == "put"

    other = net_name()
    made.append(other)
    reply = await lxd_raw.post("/1.0/networks", json={"name": other, "config": NO_ADDRESSES})
    assert reply.status_code == 201
    taken = await client.post(f"{API}/{new}/rename", json={"name": other}, headers=admin)
    assert taken.status_code == 409, taken.text
    host = await host_interface(lxd_raw)
    clash = await client.post(f"{API}/{new}/rename", json={"name": host}, headers=admin)
    assert clash.status_code == 409, clash.text
    too_long = await client.post(f"{API}/{new}/rename", json={"name": "x" * 20}, headers=admin)
    assert too_long.status_code == 400, too_long.text


async def test_state_and_leases(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, network: str
) -> None:
    viewer = auth_headers("viewer")
    state = await client.get(f"{API}/{network}/state", headers=viewer)
    assert state.status_code == 200, state.text
    assert state.json()["state"] == "up"
    assert "counters" in state.json()
    leases = await client.get(f"{API}/{network}/leases", headers=viewer)
    assert leases.status_code == 200, leases.text
    assert leases.json() == {"items": [], "total": 0, "limit": None, "offset": 0}

    host = await host_interface(lxd_raw)
    host_state = await client.get(f"{API}/{host}/state", headers=viewer)
    assert host_state.status_code == 200
    unmanaged = await client.get(f"{API}/{host}/leases", headers=viewer)
    assert unmanaged.status_code == 400, unmanaged.text
    assert unmanaged.json()["code"] == "network_not_managed"
    admin = auth_headers("admin")
    for method in ("PATCH", "DELETE"):
        reply = await client.request(method, f"{API}/{host}", json={}, headers=admin)
        assert reply.status_code == 400, (method, reply.text)
    missing = net_name()
    for suffix in ("", "/state", "/leases"):
        reply = await client.get(f"{API}/{missing}{suffix}", headers=viewer)
        assert reply.status_code == 404, (suffix, reply.text)
        assert missing in reply.json()["detail"]


async def test_unknown_project_and_bad_names(
    client: httpx.AsyncClient, auth_headers: Headers, network: str
) -> None:
    admin = auth_headers("admin")
    for path in (API, f"{API}/{network}", f"{API}/{network}/state"):
        reply = await client.get(path, params={"project": "no-such-proj"}, headers=admin)
        assert reply.status_code == 404, (path, reply.text)
    bad_project = await client.get(API, params={"project": "../x"}, headers=admin)
    assert bad_project.status_code == 422
    for bad in ("%2E%2E", "a%3Fb", "a%23b", "a%25b", "-a"):
        for suffix in ("", "/state", "/leases"):
            reply = await client.get(f"{API}/{bad}{suffix}", headers=admin)
            assert reply.status_code == 422, (bad, suffix, reply.text)
    for bad_name in ("a/b", "..", "a:b", "", "x?"):
        reply = await client.post(API, json={"name": bad_name}, headers=admin)
        assert reply.status_code == 422, (bad_name, reply.text)


async def test_roles(client: httpx.AsyncClient, auth_headers: Headers, network: str) -> None:
    assert (await client.get(f"{API}/{network}")).status_code == 401
    operator = auth_headers("operator")
    assert (await client.get(f"{API}/{network}/state", headers=operator)).status_code == 200
    refused = await client.post(f"{API}/{network}/rename", json={"name": "x"}, headers=operator)
    assert refused.status_code == 403
    assert (await client.delete(f"{API}/{network}", headers=operator)).status_code == 403
