"""Per-project roles against the real LXD, in both modes (API.md, Part 2, "Per-project roles").

A tenant (global role `none`, operator in project P) runs an instance in P and sees nothing
else: the default project and a neighbour project Q answer like missing projects, `GET
/projects` lists only P, Q's operations and events never reach it, and removing its binding
takes effect at its next request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.auth import TEST_USER_PASSWORD
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import create_instance, lxd_wait, remove_project
from tests.support.ws import close_code

pytestmark = pytest.mark.integration

V1 = "/api/v1"
# Projects that share the default project's images and profiles (so the test image and the
# root disk are there), as a tenant project often does.
SHARED = {"features.images": "false", "features.profiles": "false"}


@dataclass
class Tenancy:
    p: str
    q: str
    username: str
    headers: dict[str, str]
    token: str


async def _login(client: httpx.AsyncClient, username: str) -> str:
    reply = await client.post(
        f"{V1}/auth/login", json={"username": username, "password": TEST_USER_PASSWORD}
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


async def _make_project(raw: httpx.AsyncClient, name: str) -> None:
    reply = await raw.post("/1.0/projects", json={"name": name, "config": SHARED})
    assert reply.status_code in (200, 201), reply.text


@pytest.fixture
async def tenancy(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[[str], str],
) -> AsyncIterator[Tenancy]:
    p, q, username = unique("tp"), unique("tq"), unique("tenant")
    admin = auth_headers("admin")
    await _make_project(lxd_raw, p)
    await _make_project(lxd_raw, q)
    try:
        reply = await client.post(
            f"{V1}/auth/register",
            json={"username": username, "password": TEST_USER_PASSWORD, "role": "none"},
            headers=admin,
        )
        assert reply.status_code == 201, reply.text
        reply = await client.put(
            f"{V1}/users/{username}/projects/{p}", json={"role": "operator"}, headers=admin
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["projects"] == {p: "operator"}
        token = await _login(client, username)
        yield Tenancy(p, q, username, {"Authorization": f"Bearer {token}"}, token)
    finally:
        await client.delete(f"{V1}/users/{username}", headers=admin)
        await remove_project(lxd_raw, p)
        await remove_project(lxd_raw, q)


async def test_tenant_runs_an_instance_in_its_project_and_sees_nothing_else(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    tenancy: Tenancy,
    stopped_instance: str,
    unique: Callable[[str], str],
) -> None:
    t, name = tenancy, unique("ti")
    body = {"name": name, "source": {"type": "image", "alias": lxd_env.image_alias}}
    reply = await client.post(
        f"{V1}/instances",
        params={"project": t.p, "wait": "true"},
        json=body,
        headers=t.headers,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Success"
    reply = await client.post(
        f"{V1}/instances/{name}/start", params={"project": t.p, "wait": "true"}, headers=t.headers
    )
    assert reply.status_code == 200, reply.text
    state = await lxd_raw.get(f"/1.0/instances/{name}/state", params={"project": t.p})
    assert state.json()["metadata"]["status"] == "Running"
    listed = await client.get(f"{V1}/instances", params={"project": t.p}, headers=t.headers)
    assert [i["name"] for i in listed.json()["items"]] == [name]

    # The default project and the neighbour answer like projects that do not exist.
    for project in ("default", t.q):
        reply = await client.get(f"{V1}/instances", params={"project": project}, headers=t.headers)
        assert reply.status_code == 404, reply.text
        assert reply.json()["code"] == "not_found"
        assert reply.json()["detail"] == f"Project {project!r} not found"
        reply = await client.get(f"{V1}/projects/{project}", headers=t.headers)
        assert reply.status_code == 404
    reply = await client.get(f"{V1}/instances", headers=t.headers)  # default project
    assert reply.status_code == 404
    reply = await client.get(f"{V1}/instances/{stopped_instance}", headers=t.headers)
    assert reply.status_code == 404
    reply = await client.post(f"{V1}/instances/{stopped_instance}/start", headers=t.headers)
    assert reply.status_code == 404
    state = await lxd_raw.get(f"/1.0/instances/{stopped_instance}/state")
    assert state.json()["metadata"]["status"] == "Stopped"

    projects = await client.get(f"{V1}/projects", headers=t.headers)
    assert projects.status_code == 200
    assert [item["name"] for item in projects.json()["items"]] == [t.p]
    assert projects.json()["total"] == 1
    names = await client.get(f"{V1}/projects", params={"expand": "false"}, headers=t.headers)
    assert names.json()["items"] == [t.p]
    # Server-wide routes check the global role: `none` is too low.
    for path in ("/storage/pools", "/system/info"):
        reply = await client.get(f"{V1}{path}", headers=t.headers)
        assert reply.status_code == 403, path
    me = await client.get(f"{V1}/auth/me", headers=t.headers)
    assert me.json()["role"] == "none"
    assert me.json()["projects"] == {t.p: "operator"}


async def test_removing_the_binding_takes_effect_at_the_next_request(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], tenancy: Tenancy
) -> None:
    t = tenancy
    reply = await client.get(f"{V1}/instances", params={"project": t.p}, headers=t.headers)
    assert reply.status_code == 200
    removed = await client.delete(
        f"{V1}/users/{t.username}/projects/{t.p}", headers=auth_headers("admin")
    )
    assert removed.status_code == 204
    reply = await client.get(f"{V1}/instances", params={"project": t.p}, headers=t.headers)
    assert reply.status_code == 404
    assert (await client.get(f"{V1}/projects", headers=t.headers)).json()["items"] == []
    again = await client.delete(
        f"{V1}/users/{t.username}/projects/{t.p}", headers=auth_headers("admin")
    )
    assert again.status_code == 404
    # The token itself still works: only the project went away.
    assert (await client.get(f"{V1}/auth/me", headers=t.headers)).status_code == 200


async def test_a_viewer_binding_reads_but_does_not_change(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    auth_headers: Callable[..., dict[str, str]],
    tenancy: Tenancy,
    unique: Callable[[str], str],
) -> None:
    t, name = tenancy, unique("tv")
    await create_instance(lxd_raw, name, image=lxd_env.image_alias, project=t.p, start=False)
    reply = await client.put(
        f"{V1}/users/{t.username}/projects/{t.p}",
        json={"role": "viewer"},
        headers=auth_headers("admin"),
    )
    assert reply.json()["projects"] == {t.p: "viewer"}
    reply = await client.get(f"{V1}/instances/{name}", params={"project": t.p}, headers=t.headers)
    assert reply.status_code == 200
    reply = await client.post(
        f"{V1}/instances/{name}/start", params={"project": t.p}, headers=t.headers
    )
    assert reply.status_code == 403
    assert reply.json()["code"] == "forbidden"
    state = await lxd_raw.get(f"/1.0/instances/{name}/state", params={"project": t.p})
    assert state.json()["metadata"]["status"] == "Stopped"


async def test_a_binding_raises_a_global_viewer_in_one_project_only(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    auth_headers: Callable[..., dict[str, str]],
    tenancy: Tenancy,
    stopped_instance: str,
    unique: Callable[[str], str],
) -> None:
    t, name, admin = tenancy, unique("tg"), auth_headers("admin")
    await create_instance(lxd_raw, name, image=lxd_env.image_alias, project=t.p, start=False)
    reply = await client.patch(f"{V1}/users/{t.username}", json={"role": "viewer"}, headers=admin)
    assert reply.status_code == 200
    headers = {"Authorization": f"Bearer {await _login(client, t.username)}"}
    # A viewer everywhere: the default project is there (reads), but not writable.
    assert (await client.get(f"{V1}/instances", headers=headers)).status_code == 200
    reply = await client.post(f"{V1}/instances/{stopped_instance}/start", headers=headers)
    assert reply.status_code == 403
    reply = await client.post(
        f"{V1}/instances/{name}/start", params={"project": t.p, "wait": "true"}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    projects = await client.get(f"{V1}/projects", params={"expand": "false"}, headers=headers)
    assert {"default", t.p, t.q} <= set(projects.json()["items"])


async def test_binding_checks(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    tenancy: Tenancy,
    unique: Callable[[str], str],
) -> None:
    admin, t = auth_headers("admin"), tenancy
    missing = await client.put(
        f"{V1}/users/{t.username}/projects/{unique('nope')}", json={"role": "viewer"}, headers=admin
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    for role in ("admin", "none", "root"):
        reply = await client.put(
            f"{V1}/users/{t.username}/projects/{t.p}", json={"role": role}, headers=admin
        )
        assert reply.status_code == 422, role
    nobody = await client.put(
        f"{V1}/users/{unique('ghost')}/projects/{t.p}", json={"role": "viewer"}, headers=admin
    )
    assert nobody.status_code == 404
    bad = await client.put(
        f"{V1}/users/{t.username}/projects/a%2Fb", json={"role": "viewer"}, headers=admin
    )
    assert bad.status_code in (404, 422)
    # Only an admin binds.
    reply = await client.put(
        f"{V1}/users/{t.username}/projects/{t.p}",
        json={"role": "operator"},
        headers=auth_headers("operator"),
    )
    assert reply.status_code == 403
    listed = await client.get(f"{V1}/users/{t.username}", headers=admin)
    assert listed.json()["projects"] == {t.p: "operator"}


async def test_operations_of_other_projects_are_not_shown(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    auth_headers: Callable[..., dict[str, str]],
    tenancy: Tenancy,
    unique: Callable[[str], str],
) -> None:
    t = tenancy
    # A long-ish operation in Q (an instance start) and one in P, both started by an admin.
    q_name, p_name = unique("oq"), unique("op")
    await create_instance(lxd_raw, q_name, image=lxd_env.image_alias, project=t.q, start=False)
    await create_instance(lxd_raw, p_name, image=lxd_env.image_alias, project=t.p, start=False)
    started: dict[str, str] = {}
    for project, name in ((t.q, q_name), (t.p, p_name)):
        reply = await lxd_raw.put(
            f"/1.0/instances/{name}/state", params={"project": project}, json={"action": "start"}
        )
        started[project] = reply.json()["metadata"]["id"]
        # Read while LXD still has it (finished operations vanish after a few seconds).
        admin_view = await client.get(
            f"{V1}/operations/{started[project]}", headers=auth_headers("admin")
        )
        assert admin_view.status_code == 200
        mine = await client.get(f"{V1}/operations/{started[project]}", headers=t.headers)
        assert mine.status_code == (200 if project == t.p else 404), mine.text
        waited = await client.get(
            f"{V1}/operations/{started[project]}/wait", params={"timeout": 0}, headers=t.headers
        )
        assert waited.status_code == (200 if project == t.p else 404)
        await lxd_wait(lxd_raw, reply)
    listed = await client.get(f"{V1}/operations", params={"project": t.q}, headers=t.headers)
    assert listed.status_code == 404
    listed = await client.get(
        f"{V1}/operations", params={"project": t.p, "expand": "false"}, headers=t.headers
    )
    assert listed.status_code == 200
    assert started[t.q] not in listed.json()["items"]


async def _frames(ws: Any, seconds: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                seen.append(json.loads(await ws.recv()))
    except TimeoutError:
        return seen


async def test_events_of_neighbours_never_reach_a_tenant(
    client: httpx.AsyncClient,
    live_url: str,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    tenancy: Tenancy,
    unique: Callable[[str], str],
) -> None:
    t = tenancy
    base = f"{live_url}{V1}/operations/ws?token={t.token}&type=lifecycle"
    for refused, code in ((f"&project={t.q}", 4404), ("", 4404), ("&all-projects=true", 4403)):
        async with connect(base + refused, ping_interval=None, open_timeout=30) as ws:
            assert await close_code(ws) == code, refused
    q_name, p_name = unique("eq"), unique("ep")
    async with connect(f"{base}&project={t.p}", ping_interval=None, open_timeout=30) as ws:
        await asyncio.sleep(0.5)  # the hub's upstream for P is connected
        await create_instance(lxd_raw, q_name, image=lxd_env.image_alias, project=t.q, start=False)
        await create_instance(lxd_raw, p_name, image=lxd_env.image_alias, project=t.p, start=False)
        seen = await _frames(ws, 3)
    assert seen, "the tenant saw no event of its own project"
    assert {event["project"] for event in seen} == {t.p}
    sources = " ".join(str(event["metadata"].get("source")) for event in seen)
    assert p_name in sources
    assert q_name not in sources


async def test_exec_in_an_unseen_project_closes_4404(
    live_url: str, tenancy: Tenancy, stopped_instance: str
) -> None:
    url = f"{live_url}{V1}/instances/{stopped_instance}/exec/ws?token={tenancy.token}"
    async with connect(url, ping_interval=None, open_timeout=30) as ws:
        assert await close_code(ws) == 4404


async def test_a_global_viewer_follows_every_project_with_all_projects(
    live_url: str,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    ws_token: Callable[..., str],
    tenancy: Tenancy,
    unique: Callable[[str], str],
) -> None:
    t = tenancy
    url = (
        f"{live_url}{V1}/operations/ws?token={ws_token('viewer')}&type=lifecycle&all-projects=true"
    )
    p_name, q_name = unique("ap"), unique("aq")
    async with connect(url, ping_interval=None, open_timeout=30) as ws:
        await asyncio.sleep(0.5)
        await create_instance(lxd_raw, p_name, image=lxd_env.image_alias, project=t.p, start=False)
        await create_instance(lxd_raw, q_name, image=lxd_env.image_alias, project=t.q, start=False)
        seen = await _frames(ws, 3)
    assert {t.p, t.q} <= {event["project"] for event in seen}


async def test_removing_the_binding_ends_the_tenants_sessions_in_that_project(
    client: httpx.AsyncClient,
    live_url: str,
    auth_headers: Callable[..., dict[str, str]],
    tenancy: Tenancy,
) -> None:
    t = tenancy
    url = f"{live_url}{V1}/operations/ws?token={t.token}&type=lifecycle&project={t.p}"
    async with connect(url, ping_interval=None, open_timeout=30) as ws:
        await asyncio.sleep(0.3)
        removed = await client.delete(
            f"{V1}/users/{t.username}/projects/{t.p}", headers=auth_headers("admin")
        )
        assert removed.status_code == 204
        assert await close_code(ws, timeout=1.5) == 4404
