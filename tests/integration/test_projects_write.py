"""Project PUT, PATCH (merge on LXD 5.0), rename and delete, read back with `lxd_raw`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import Headers, assert_error
from tests.support.projects import make_project, new_name, raw_project, remove_projects

API = "/api/v1/projects"

FEATURES = {"features.images", "features.profiles", "features.storage.volumes"}


@pytest.fixture
async def projects(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    names: list[str] = []
    yield names
    await remove_projects(lxd_raw, names)


async def add_profile(raw: httpx.AsyncClient, project: str) -> None:
    """Something that makes a project non-empty (cleaned up by the `projects` fixture)."""
    reply = await raw.post("/1.0/profiles", params={"project": project}, json={"name": "extra"})
    assert reply.status_code == 201, reply.text


# --- PUT ---------------------------------------------------------------------------------------
async def test_put_replaces_config(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects, {"user.old": "1"})
    current = await lxd_raw.get(f"/1.0/projects/{name}")
    config = {k: v for k, v in current.json()["metadata"]["config"].items() if k != "user.old"}
    body = {"description": "replaced", "config": {**config, "user.new": "2"}}
    reply = await client.put(f"{API}/{name}", json=body, headers=auth_headers("admin"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["config"]["user.new"] == "2"
    stored = await raw_project(lxd_raw, name)
    assert stored is not None
    assert stored["description"] == "replaced"
    assert stored["config"].get("user.new") == "2"
    assert "user.old" not in stored["config"]


async def test_put_if_match(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    headers = auth_headers("admin")
    got = await client.get(f"{API}/{name}", headers=headers)
    etag, config = got.headers["etag"], got.json()["config"]

    stale = {**headers, "If-Match": '"0000"'}
    reply = await client.put(
        f"{API}/{name}", json={"description": "no", "config": config}, headers=stale
    )
    assert_error(reply, 412)
    assert (await raw_project(lxd_raw, name) or {})["description"] == ""

    fresh = {**headers, "If-Match": etag}
    reply = await client.put(
        f"{API}/{name}", json={"description": "yes", "config": config}, headers=fresh
    )
    assert reply.status_code == 200, reply.text
    assert (await raw_project(lxd_raw, name) or {})["description"] == "yes"


# --- PATCH -------------------------------------------------------------------------------------
async def test_patch_merges_config(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    """LXD 5.0's own PATCH would drop every other key (features included): ours merges."""
    name = await make_project(lxd_raw, projects, {"user.a": "1", "user.gone": "x"})
    body = {"config": {"user.b": "2", "limits.instances": 7, "user.gone": None}}
    reply = await client.patch(f"{API}/{name}", json=body, headers=auth_headers("admin"))
    assert reply.status_code == 200, reply.text
    assert reply.headers.get("etag")

    stored = await raw_project(lxd_raw, name)
    assert stored is not None
    config = stored["config"]
    assert config["user.a"] == "1"
    assert config["user.b"] == "2"
    assert config["limits.instances"] == "7"
    assert "user.gone" not in config
    assert {key: config.get(key) for key in FEATURES} == dict.fromkeys(FEATURES, "true")
    assert reply.json()["config"] == config

    reply = await client.patch(
        f"{API}/{name}", json={"description": "only this"}, headers=auth_headers("admin")
    )
    assert reply.status_code == 200, reply.text
    stored = await raw_project(lxd_raw, name)
    assert stored is not None
    assert stored["description"] == "only this"
    assert stored["config"] == config


async def test_patch_concurrent_edits_both_land(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    headers = auth_headers("admin")
    replies = await asyncio.gather(
        *(
            client.patch(f"{API}/{name}", json={"config": {f"user.k{i}": str(i)}}, headers=headers)
            for i in range(4)
        )
    )
    assert [r.status_code for r in replies] == [200] * 4, [r.text for r in replies]
    config = (await raw_project(lxd_raw, name) or {})["config"]
    assert {config.get(f"user.k{i}") for i in range(4)} == {"0", "1", "2", "3"}


async def test_patch_if_match_and_bad_input(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    headers = {**auth_headers("admin"), "If-Match": '"stale"'}
    reply = await client.patch(f"{API}/{name}", json={"description": "x"}, headers=headers)
    assert_error(reply, 412)
    reply = await client.patch(
        f"{API}/{name}", json={"config": {"no.such.key": "1"}}, headers=auth_headers()
    )
    assert_error(reply, 400)
    reply = await client.patch(f"{API}/{name}", json={"name": "x"}, headers=auth_headers())
    assert_error(reply, 422)
    assert (await raw_project(lxd_raw, name) or {})["description"] == ""


# --- rename ------------------------------------------------------------------------------------
async def test_rename_project(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    target = new_name(projects)
    reply = await client.post(
        f"{API}/{name}/rename", json={"name": target}, headers=auth_headers("admin")
    )
    assert reply.status_code == 202, reply.text
    ref = reply.json()
    assert set(ref) == {"operation_id", "operation_url", "poll_url", "wait_url"}
    done = await lxd_raw.get(f"{ref['operation_url']}/wait", params={"timeout": 30})
    assert done.json()["metadata"]["status"] == "Success", done.text
    assert await raw_project(lxd_raw, name) is None
    assert await raw_project(lxd_raw, target) is not None

    # And back, waiting through the API.
    reply = await client.post(
        f"{API}/{target}/rename",
        params={"wait": "true"},
        json={"name": name},
        headers=auth_headers(),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Success"
    assert await raw_project(lxd_raw, target) is None
    assert await raw_project(lxd_raw, name) is not None


async def test_rename_refusals(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    headers = auth_headers("admin")
    first = await make_project(lxd_raw, projects)
    second = await make_project(lxd_raw, projects)

    reply = await client.post(f"{API}/{first}/rename", json={"name": second}, headers=headers)
    assert_error(reply, 409, "conflict")

    reply = await client.post(f"{API}/default/rename", json={"name": "zz"}, headers=headers)
    body = assert_error(reply, 409, "default_project_protected")
    assert "default project cannot be renamed" in body["detail"]

    await add_profile(lxd_raw, first)
    target = new_name(projects)
    reply = await client.post(f"{API}/{first}/rename", json={"name": target}, headers=headers)
    body = assert_error(reply, 409, "project_not_empty")
    assert "/1.0/profiles/extra" in body["detail"]
    assert await raw_project(lxd_raw, first) is not None
    assert await raw_project(lxd_raw, target) is None

    reply = await client.post(f"{API}/{first}/rename", json={"name": "a/b"}, headers=headers)
    assert_error(reply, 422)


# --- delete ------------------------------------------------------------------------------------
async def test_delete_project(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    reply = await client.delete(f"{API}/{name}", headers=auth_headers("admin"))
    assert reply.status_code == 204, reply.text
    assert reply.content == b""
    assert await raw_project(lxd_raw, name) is None
    assert_error(await client.delete(f"{API}/{name}", headers=auth_headers()), 404)


async def test_delete_refusals(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    headers = auth_headers("admin")
    reply = await client.delete(f"{API}/default", headers=headers)
    body = assert_error(reply, 409, "default_project_protected")
    assert "default project cannot be deleted" in body["detail"]
    assert await raw_project(lxd_raw, "default") is not None

    name = await make_project(lxd_raw, projects)
    await add_profile(lxd_raw, name)
    reply = await client.delete(f"{API}/{name}", headers=headers)
    body = assert_error(reply, 409, "project_not_empty")
    assert "/1.0/profiles/extra" in body["detail"]
    assert await raw_project(lxd_raw, name) is not None
