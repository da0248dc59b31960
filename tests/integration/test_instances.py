"""Instances against the real LXD, in both connection modes: list, get, create, update,
rename, delete, and bad input. What changed is read back from LXD with `lxd_raw`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.support.api import wait_ref
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import create_instance, delete_instance, lxd_instance

API = "/api/v1/instances"
Headers = Callable[..., dict[str, str]]


# --- lists --------------------------------------------------------------------------------------
@pytest.fixture
async def trio(lxd_raw: httpx.AsyncClient, lxd_env: LXDEnv) -> AsyncIterator[list[str]]:
    """Three instances sharing a unique prefix: the first one running."""
    prefix = f"ls{uuid.uuid4().hex[:6]}"
    made = [f"{prefix}-{i}" for i in range(3)]
    try:
        for i, name in enumerate(made):
            await create_instance(lxd_raw, name, image=lxd_env.image_alias, start=i == 0)
        yield made
    finally:
        for name in made:
            await delete_instance(lxd_raw, name)


async def test_list_paging_filter_and_names(
    client: httpx.AsyncClient, auth_headers: Headers, trio: list[str]
) -> None:
    prefix = trio[0].rsplit("-", 1)[0]
    headers = auth_headers("viewer")
    everything = await client.get(API, params={"filter": f"name eq {prefix}-.*"}, headers=headers)
    assert everything.status_code == 200, everything.text
    body = everything.json()
    assert body["total"] == 3
    assert body["limit"] is None
    assert body["offset"] == 0
    assert sorted(item["name"] for item in body["items"]) == trio
    assert all("status" in item and "config" in item for item in body["items"])
    order = [item["name"] for item in body["items"]]

    page = await client.get(
        API,
        params={"filter": f"name eq {prefix}-.*", "limit": 2, "offset": 1, "expand": "false"},
        headers=headers,
    )
    assert page.status_code == 200
    assert page.json() == {"items": order[1:3], "total": 3, "limit": 2, "offset": 1}

    running = await client.get(
        API,
        params={"filter": f"name eq {prefix}-.* and status eq Running", "expand": "false"},
        headers=headers,
    )
    assert running.json()["items"] == [trio[0]]

    containers = await client.get(
        API,
        params={"filter": f"name eq {prefix}-.*", "instance-type": "virtual-machine"},
        headers=headers,
    )
    assert containers.status_code == 200
    assert containers.json()["total"] == 0


async def test_concurrent_lists_agree(
    client: httpx.AsyncClient, auth_headers: Headers, trio: list[str]
) -> None:
    # Identical reads in flight share LXD requests: each must still get the whole answer.
    prefix = trio[0].rsplit("-", 1)[0]
    params = {"filter": f"name eq {prefix}-.*"}
    replies = await asyncio.gather(
        *(client.get(API, params=params, headers=auth_headers("viewer")) for _ in range(8))
    )
    assert {reply.status_code for reply in replies} == {200}
    assert all([i["name"] for i in reply.json()["items"]] == trio for reply in replies)


async def test_list_bad_query(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    headers = auth_headers("viewer")
    for params in ({"limit": -1}, {"limit": 0}, {"offset": -1}, {"instance-type": "vm"}):
        reply = await client.get(API, params=params, headers=headers)
        assert reply.status_code == 422, params
        assert reply.json()["code"] == "validation_error"
    # LXD 5.0 answers a malformed filter with a 500: it is the client's mistake.
    reply = await client.get(API, params={"filter": "name eq"}, headers=headers)
    assert reply.status_code == 400
    assert "filter" in reply.json()["detail"].lower()


async def test_unknown_project_is_404(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    reply = await client.get(
        API, params={"project": f"nope{uuid.uuid4().hex[:6]}"}, headers=auth_headers("viewer")
    )
    assert reply.status_code == 404
    assert set(reply.json()) == {"detail", "code", "request_id"}
    assert "project" in reply.json()["detail"].lower()


@pytest.fixture
async def project_p(lxd_raw: httpx.AsyncClient) -> AsyncIterator[str]:
    """A project of our own that uses default's images and profiles."""
    name = f"p{uuid.uuid4().hex[:8]}"
    reply = await lxd_raw.post(
        "/1.0/projects",
        json={"name": name, "config": {"features.images": "false", "features.profiles": "false"}},
    )
    assert reply.status_code in {200, 201}, reply.text
    try:
        yield name
    finally:
        await lxd_raw.delete(f"/1.0/projects/{name}")


async def test_project_scoping(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    project_p: str,
) -> None:
    name = f"pj{uuid.uuid4().hex[:8]}"
    await create_instance(lxd_raw, name, image=lxd_env.image_alias, project=project_p, start=False)
    try:
        headers = auth_headers("viewer")
        inside = await client.get(
            API, params={"project": project_p, "expand": "false"}, headers=headers
        )
        assert inside.status_code == 200
        assert inside.json()["items"] == [name]
        outside = await client.get(
            API, params={"filter": f"name eq {name}", "expand": "false"}, headers=headers
        )
        assert outside.json()["items"] == []
        assert (await client.get(f"{API}/{name}", headers=headers)).status_code == 404
        found = await client.get(f"{API}/{name}", params={"project": project_p}, headers=headers)
        assert found.status_code == 200
        assert found.json()["project"] == project_p
    finally:
        await delete_instance(lxd_raw, name, project=project_p)


# --- get, create --------------------------------------------------------------------------------
async def test_get_instance_and_state(
    client: httpx.AsyncClient, auth_headers: Headers, instance: str
) -> None:
    headers = auth_headers("viewer")
    reply = await client.get(f"{API}/{instance}", headers=headers)
    assert reply.status_code == 200
    assert reply.json()["name"] == instance
    assert reply.json()["status"] == "Running"
    assert reply.headers["etag"]
    state = await client.get(f"{API}/{instance}/state", headers=headers)
    assert state.status_code == 200
    body = state.json()
    assert body["status"] == "Running"
    assert body["pid"] > 0
    assert {"cpu", "memory", "disk", "network", "processes"} <= set(body)
    assert "lo" in body["network"]
    # busybox's init leaves lo down (no addresses), but every interface has the full shape.
    assert {"addresses", "counters", "hwaddr", "mtu", "state"} <= set(body["network"]["lo"])


async def test_create_waits_and_starts(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    names: list[str],
) -> None:
    name = f"cr{uuid.uuid4().hex[:8]}"
    names.append(name)
    body = {
        "name": name,
        "source": {"type": "image", "alias": lxd_env.image_alias},
        "config": {"limits.cpu": 1, "user.note": "from-api"},
        "description": "made by a test",
        "start": True,
    }
    reply = await client.post(API, json=body, headers=auth_headers("operator"))
    op = await wait_ref(lxd_raw, reply)
    # The 202 pointed at the start: once it succeeded, the instance runs.
    assert op["status"] == "Success", op.get("err")
    assert op["description"] == "Starting instance"
    made = (await lxd_instance(lxd_raw, name))["metadata"]
    assert made["status"] == "Running"
    assert made["config"]["limits.cpu"] == "1"
    assert made["config"]["user.note"] == "from-api"
    assert made["description"] == "made by a test"

    again = await client.post(API, json=body, headers=auth_headers("operator"))
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


async def test_create_stopped_with_wait(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    names: list[str],
) -> None:
    name = f"cr{uuid.uuid4().hex[:8]}"
    names.append(name)
    reply = await client.post(
        API,
        params={"wait": "true", "timeout": 60},
        json={"name": name, "source": {"type": "none"}, "instance_type": "c1-m1"},
        headers=auth_headers("operator"),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Success"
    made = (await lxd_instance(lxd_raw, name))["metadata"]
    assert made["status"] == "Stopped"
    assert made["config"]["limits.cpu"] == "1"


async def test_a_copy_without_profiles_gets_its_sources(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
) -> None:
    """LXD 5.0 gives a copy sent without `profiles` none (and fails it: no root disk); like
    `lxc copy`, the API sends the source's, for a copy of an instance and of a snapshot.
    Profiles named in the request are sent as they are."""
    tag = uuid.uuid4().hex[:8]
    profile, source = f"cp{tag}", f"cps{tag}"
    copies = [f"cpa{tag}", f"cpb{tag}", f"cpc{tag}"]
    made = await lxd_raw.post("/1.0/profiles", json={"name": profile, "config": {"user.x": "1"}})
    assert made.status_code == 201, made.text
    try:
        await create_instance(lxd_raw, source, image=lxd_env.image_alias, start=False)
        patched = await lxd_raw.patch(
            f"/1.0/instances/{source}", json={"profiles": ["default", profile]}
        )
        assert patched.status_code == 200, patched.text
        snap = await client.post(
            f"{API}/{source}/snapshots",
            params={"wait": "true"},
            json={"name": "s1"},
            headers=auth_headers("operator"),
        )
        assert snap.status_code == 200, snap.text
        bodies = [
            {"name": copies[0], "source": {"type": "copy", "source": source}},
            {"name": copies[1], "source": {"type": "copy", "source": f"{source}/s1"}},
            {
                "name": copies[2],
                "source": {"type": "copy", "source": source},
                "profiles": ["default"],
            },
        ]
        for body in bodies:
            reply = await client.post(
                API, params={"wait": "true"}, json=body, headers=auth_headers("operator")
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["status"] == "Success", reply.json()
        got = [(await lxd_instance(lxd_raw, name))["metadata"]["profiles"] for name in copies]
        assert got == [["default", profile], ["default", profile], ["default"]]
    finally:
        for name in [*copies, source]:
            await delete_instance(lxd_raw, name)
        await lxd_raw.delete(f"/1.0/profiles/{profile}")
    assert (await lxd_raw.get(f"/1.0/profiles/{profile}")).status_code == 404


async def test_create_bad_input(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient
) -> None:
    headers = auth_headers("operator")
    bad_bodies = [
        {"name": "bad_name", "source": {"type": "none"}},
        {"name": "-x", "source": {"type": "none"}},
        {"name": "ok1", "source": {"type": "image"}},  # LXD 5.0: a 500
        {"name": "ok1", "source": {"type": "copy"}},
        {"name": "ok1", "source": {"type": "bogus"}},
        {"name": "ok1", "source": {"type": "none"}, "profile": ["default"]},
        {"name": "ok1", "source": {"type": "none"}, "type": "vm"},
    ]
    for body in bad_bodies:
        reply = await client.post(API, json=body, headers=headers)
        assert reply.status_code == 422, (body, reply.text)
        assert reply.json()["code"] == "validation_error"
    missing = await client.post(
        API, json={"name": "ok1", "source": {"type": "image", "alias": "no-such"}}, headers=headers
    )
    assert missing.status_code == 404
    assert "alias" in missing.json()["detail"].lower()
    assert await lxd_instance(lxd_raw, "ok1") is None
    viewer = await client.post(
        API, json={"name": "ok1", "source": {"type": "none"}}, headers=auth_headers("viewer")
    )
    assert viewer.status_code == 403


@pytest.mark.parametrize(
    "path", ["%2E%2E", "a%2Fb", "a%2F..%2F..%2Fnetworks", "a_b", "a.b", "x" * 64, "a%3Fb", "a%23b"]
)
async def test_invalid_names_are_422(
    client: httpx.AsyncClient, auth_headers: Headers, path: str
) -> None:
    # Refused before LXD is asked: by the route's name pattern (validation_error) or, for
    # encoded separators and dot segments, by the app's raw-path check (invalid_name).
    for suffix in ("", "/state", "/snapshots", "/backups/b1/export", "/logs/lxc.log"):
        reply = await client.get(f"{API}/{path}{suffix}", headers=auth_headers("operator"))
        assert reply.status_code == 422, (path, suffix, reply.text)
        assert reply.json()["code"] in {"validation_error", "invalid_name"}


async def test_unknown_instance_is_404(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    name = f"nope{uuid.uuid4().hex[:8]}"
    for method, path in [
        ("GET", f"{API}/{name}"),
        ("GET", f"{API}/{name}/state"),
        ("PATCH", f"{API}/{name}"),
        ("DELETE", f"{API}/{name}"),
        ("PUT", f"{API}/{name}/state"),
    ]:
        body = {"action": "start"} if path.endswith("/state") else {}
        reply = await client.request(
            method,
            path,
            json=body if method in {"PATCH", "PUT"} else None,
            headers=auth_headers("operator"),
        )
        assert reply.status_code == 404, (method, path, reply.text)
        assert name in reply.json()["detail"]
