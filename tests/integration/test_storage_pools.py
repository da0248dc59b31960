"""Storage pools against the real LXD, in both connection modes: CRUD with ETag passthrough,
in-use deletes, bad input. What changed is read back from LXD with `lxd_raw`; every pool made
here is a `dir` pool on a temporary directory and is deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

API = "/api/v1/storage/pools"
Headers = Callable[..., dict[str, str]]


def pool_name() -> str:
    return f"tp{uuid.uuid4().hex[:8]}"


async def lxd_pool(raw: httpx.AsyncClient, name: str) -> Any:
    reply = await raw.get(f"/1.0/storage-pools/{name}")
    return reply.json()["metadata"] if reply.status_code == 200 else None


async def drop_pool(raw: httpx.AsyncClient, name: str) -> None:
    """Delete the pool and whatever custom volumes a failed test left in it."""
    volumes = await raw.get(f"/1.0/storage-pools/{name}/volumes/custom")
    for url in volumes.json().get("metadata") or []:
        await raw.delete(url)
    await raw.delete(f"/1.0/storage-pools/{name}")


@pytest.fixture
async def pool_source(tmp_path: Path) -> Path:
    source = tmp_path / f"pool-{uuid.uuid4().hex[:6]}"
    source.mkdir()
    return source


@pytest.fixture
async def made_pools(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Names of pools a test creates through the API; deleted afterwards whatever happens."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            await drop_pool(lxd_raw, name)


@pytest.fixture
async def pool(lxd_raw: httpx.AsyncClient, pool_source: Path) -> AsyncIterator[str]:
    """A dir pool made straight through LXD."""
    name = pool_name()
    body = {"name": name, "driver": "dir", "config": {"source": str(pool_source)}}
    reply = await lxd_raw.post("/1.0/storage-pools", json=body)
    assert reply.status_code == 201, reply.text
    try:
        yield name
    finally:
        await drop_pool(lxd_raw, name)


async def test_create_get_list_delete(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    pool_source: Path,
    made_pools: list[str],
) -> None:
    admin, viewer = auth_headers("admin"), auth_headers("viewer")
    name = pool_name()
    made_pools.append(name)
    body = {
        "name": name,
        "driver": "dir",
        "config": {"source": str(pool_source)},
        "description": "made by a test",
    }
    created = await client.post(API, json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/{name}"
    assert created.json()["name"] == name
    assert created.json()["driver"] == "dir"
    in_lxd = await lxd_pool(lxd_raw, name)
    assert in_lxd["config"]["source"] == str(pool_source)
    assert in_lxd["description"] == "made by a test"

    again = await client.post(API, json=body, headers=admin)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "conflict"

    got = await client.get(f"{API}/{name}", headers=viewer)
    assert got.status_code == 200
    assert got.json()["config"]["source"] == str(pool_source)

    listed = await client.get(API, headers=viewer)
    assert listed.status_code == 200
    assert name in [p["name"] for p in listed.json()["items"]]
    names = await client.get(API, params={"expand": "false", "limit": 1000}, headers=viewer)
    assert name in names.json()["items"]
    assert names.json()["total"] >= 2

    deleted = await client.delete(f"{API}/{name}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert await lxd_pool(lxd_raw, name) is None
    gone = await client.get(f"{API}/{name}", headers=viewer)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"


async def test_put_and_patch_with_if_match(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    pool: str,
    pool_source: Path,
) -> None:
    admin = auth_headers("admin")
    patched = await client.patch(
        f"{API}/{pool}",
        json={"config": {"volume.size": "1GiB"}, "description": "patched"},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    in_lxd = await lxd_pool(lxd_raw, pool)
    assert in_lxd["config"] == {"source": str(pool_source), "volume.size": "1GiB"}
    assert in_lxd["description"] == "patched"

    replaced = await client.put(
        f"{API}/{pool}",
        json={"config": {"source": str(pool_source)}, "description": "replaced"},
        headers=admin,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["description"] == "replaced"
    in_lxd = await lxd_pool(lxd_raw, pool)
    assert in_lxd["config"] == {"source": str(pool_source)}  # PUT dropped volume.size
    assert in_lxd["description"] == "replaced"

    stale = await client.patch(
        f"{API}/{pool}",
        json={"description": "stale"},
        headers={**admin, "If-Match": '"not-the-etag"'},
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "precondition_failed"
    assert (await lxd_pool(lxd_raw, pool))["description"] == "replaced"

    unknown_key = await client.patch(
        f"{API}/{pool}", json={"config": {"no.such.key": "1"}}, headers=admin
    )
    assert unknown_key.status_code == 400, unknown_key.text
    assert "no.such.key" in unknown_key.json()["detail"]

    bad_size = await client.patch(
        f"{API}/{pool}", json={"config": {"volume.size": "lots"}}, headers=admin
    )
    assert bad_size.status_code == 422, bad_size.text


async def test_delete_in_use_names_the_volume(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, pool: str
) -> None:
    reply = await lxd_raw.post(
        f"/1.0/storage-pools/{pool}/volumes/custom", json={"name": "keeper", "type": "custom"}
    )
    assert reply.status_code == 200, reply.text
    refused = await client.delete(f"{API}/{pool}", headers=auth_headers("admin"))
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "in_use"
    assert "keeper" in refused.json()["detail"]
    assert await lxd_pool(lxd_raw, pool) is not None


async def test_bad_input(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    tmp_path: Path,
    made_pools: list[str],
) -> None:
    admin = auth_headers("admin")
    missing = pool_name()
    assert (await client.get(f"{API}/{missing}", headers=admin)).status_code == 404
    assert (await client.delete(f"{API}/{missing}", headers=admin)).status_code == 404
    unknown_project = await client.get(API, params={"project": "no-such-proj"}, headers=admin)
    assert unknown_project.status_code == 404
    for bad in ("%2E%2E", "a%3Fb", "a%23b", "a%25b", "-a"):
        for suffix in ("", "/volumes", "/volumes/v1", "/volumes/v1/resize"):
            reply = await client.get(f"{API}/{bad}{suffix}", headers=admin)
            if suffix.endswith("resize"):
                reply = await client.post(
                    f"{API}/{bad}{suffix}", json={"size": "1GiB"}, headers=admin
                )
            assert reply.status_code == 422, (bad, suffix, reply.text)
            # A dot segment is refused by the raw-path guard, the rest by the name pattern.
            expected = "invalid_name" if bad == "%2E%2E" else "validation_error"
            assert reply.json()["code"] == expected
    # An encoded separator never reaches a route (the raw-path guard answers first).
    slash = await client.delete(f"{API}/a%2F..%2F..%2Fnetworks%2Fx", headers=admin)
    assert slash.status_code == 422, slash.text

    name = pool_name()
    made_pools.append(name)
    no_source = await client.post(
        API,
        json={"name": name, "driver": "dir", "config": {"source": str(tmp_path / "nope" / "x")}},
        headers=admin,
    )
    assert no_source.status_code == 400, no_source.text
    bad_driver = await client.post(API, json={"name": name, "driver": "nosuch"}, headers=admin)
    assert bad_driver.status_code == 400, bad_driver.text
    assert await lxd_pool(lxd_raw, name) is None
    bad_name = await client.post(API, json={"name": "a/b", "driver": "dir"}, headers=admin)
    assert bad_name.status_code == 422
    typo = await client.post(API, json={"name": name, "drvier": "dir"}, headers=admin)
    assert typo.status_code == 422
    assert typo.json()["code"] == "validation_error"


async def test_roles(client: httpx.AsyncClient, auth_headers: Headers, pool: str) -> None:
    assert (await client.get(f"{API}/{pool}")).status_code == 401
    viewer = auth_headers("viewer")
    assert (await client.get(f"{API}/{pool}", headers=viewer)).status_code == 200
    refused = await client.patch(f"{API}/{pool}", json={"description": "x"}, headers=viewer)
    assert refused.status_code == 403
    operator = auth_headers("operator")
    assert (await client.delete(f"{API}/{pool}", headers=operator)).status_code == 403
