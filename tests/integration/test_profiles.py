"""Profiles against the real LXD, in both connection modes: CRUD with ETag passthrough, rename,
in-use and `default` refusals, roles, a project of its own, bad input. What changed is read back
from LXD with `lxd_raw`; every profile (and project) made here is removed, and checked gone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.support.auth import TEST_USER_PASSWORD
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import delete_instance, lxd_wait, remove_project

API = "/api/v1/profiles"
V1 = "/api/v1"
Headers = Callable[..., dict[str, str]]


async def lxd_profile(raw: httpx.AsyncClient, name: str, project: str = "default") -> Any:
    reply = await raw.get(f"/1.0/profiles/{name}", params={"project": project})
    return reply.json()["metadata"] if reply.status_code == 200 else None


@pytest.fixture
async def made(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[tuple[str, str]]]:
    """(name, project) of profiles a test creates or renames to: deleted afterwards, and
    checked gone, whatever happens."""
    profiles: list[tuple[str, str]] = []
    try:
        yield profiles
    finally:
        for name, project in profiles:
            await lxd_raw.delete(f"/1.0/profiles/{name}", params={"project": project})
        left = [p for p in profiles if await lxd_profile(lxd_raw, *p) is not None]
        assert not left, f"profiles left behind: {left}"


@pytest.fixture
async def profile(
    lxd_raw: httpx.AsyncClient, made: list[tuple[str, str]], unique: Callable[[str], str]
) -> str:
    """A profile made straight through LXD in the default project."""
    name = unique("tpr")
    made.append((name, "default"))
    body = {"name": name, "config": {"user.a": "1"}, "description": "raw"}
    reply = await lxd_raw.post("/1.0/profiles", json=body)
    assert reply.status_code == 201, reply.text
    return name


async def test_create_get_list_delete(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    made: list[tuple[str, str]],
    unique: Callable[[str], str],
) -> None:
    admin, viewer = auth_headers("admin"), auth_headers("viewer")
    name = unique("tpr")
    made.append((name, "default"))
    body = {
        "name": name,
        "description": "test",
        "config": {"limits.cpu": 1, "user.x": "y"},
        "devices": {"extra": {"type": "none"}},
    }
    created = await client.post(API, json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/{name}"
    assert created.headers.get("etag")
    in_lxd = await lxd_profile(lxd_raw, name)
    assert in_lxd["config"] == {"limits.cpu": "1", "user.x": "y"}
    assert in_lxd["devices"] == {"extra": {"type": "none"}}
    assert in_lxd["description"] == "test"

    again = await client.post(API, json=body, headers=admin)
    assert again.status_code == 409, again.text  # LXD 5.0 says 500
    assert again.json()["detail"] == f"Profile {name!r} already exists"

    got = await client.get(f"{API}/{name}", headers=viewer)
    assert got.status_code == 200
    assert got.json()["used_by"] == []
    assert got.headers["etag"]
    listed = await client.get(API, params={"limit": 1000}, headers=viewer)
    assert {"default", name} <= {p["name"] for p in listed.json()["items"]}
    names = await client.get(API, params={"expand": "false", "limit": 1000}, headers=viewer)
    assert name in names.json()["items"]

    deleted = await client.delete(f"{API}/{name}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert await lxd_profile(lxd_raw, name) is None
    assert (await client.get(f"{API}/{name}", headers=viewer)).status_code == 404


async def test_put_patch_with_if_match_and_rename(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    profile: str,
    made: list[tuple[str, str]],
) -> None:
    admin = auth_headers("admin")
    etag = (await client.get(f"{API}/{profile}", headers=admin)).headers["etag"]
    patched = await client.patch(
        f"{API}/{profile}",
        json={"config": {"user.b": "2"}, "devices": {"d1": {"type": "none"}}},
        headers={**admin, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] != etag
    in_lxd = await lxd_profile(lxd_raw, profile)
    assert in_lxd["config"] == {"user.a": "1", "user.b": "2"}
    assert in_lxd["devices"] == {"d1": {"type": "none"}}
    assert in_lxd["description"] == "raw"

    stale = await client.put(
        f"{API}/{profile}", json={"config": {}}, headers={**admin, "If-Match": etag}
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "precondition_failed"
    assert (await lxd_profile(lxd_raw, profile))["config"] == {"user.a": "1", "user.b": "2"}

    replaced = await client.put(
        f"{API}/{profile}",
        json={"config": {"user.c": "3"}, "description": "put"},
        headers={**admin, "If-Match": patched.headers["etag"]},
    )
    assert replaced.status_code == 200, replaced.text
    in_lxd = await lxd_profile(lxd_raw, profile)
    assert (in_lxd["config"], in_lxd["devices"]) == ({"user.c": "3"}, {})
    assert in_lxd["description"] == "put"

    bad_key = await client.patch(f"{API}/{profile}", json={"config": {"no": "1"}}, headers=admin)
    assert bad_key.status_code == 400, bad_key.text  # LXD 5.0 says 500
    bad_device = await client.patch(
        f"{API}/{profile}", json={"devices": {"x": {"type": "bogus"}}}, headers=admin
    )
    assert bad_device.status_code == 400, bad_device.text  # LXD 5.0 says 500
    no_network = await client.patch(
        f"{API}/{profile}",
        json={"devices": {"eth9": {"type": "nic", "network": "no-such-net"}}},
        headers=admin,
    )
    assert no_network.status_code == 400, no_network.text  # LXD 5.0 says 404

    new_name = f"{profile}-b"
    made.append((new_name, "default"))
    renamed = await client.post(f"{API}/{profile}/rename", json={"name": new_name}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == new_name
    assert renamed.headers["location"] == f"{API}/{new_name}"
    assert await lxd_profile(lxd_raw, profile) is None
    assert (await lxd_profile(lxd_raw, new_name))["config"] == {"user.c": "3"}
    taken = await client.post(f"{API}/{new_name}/rename", json={"name": "default"}, headers=admin)
    assert taken.status_code == 409, taken.text  # LXD 5.0 says 500
    gone = await client.post(f"{API}/{profile}/rename", json={"name": "zz"}, headers=admin)
    assert gone.status_code == 404, gone.text  # LXD 5.0 says 500 "Query affected 0 rows"


async def test_in_use_profile_is_not_deleted(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    profile: str,
    unique: Callable[[str], str],
) -> None:
    admin = auth_headers("admin")
    instance = unique("tpi")
    body = {
        "name": instance,
        "profiles": ["default", profile],
        "source": {"type": "image", "alias": lxd_env.image_alias},
    }
    try:
        op = await lxd_wait(lxd_raw, await lxd_raw.post("/1.0/instances", json=body))
        assert op["status"] == "Success", op
        refused = await client.delete(f"{API}/{profile}", headers=admin)
        assert refused.status_code == 409, refused.text  # LXD 5.0 says 500
        error = refused.json()
        assert error["code"] == "in_use"
        assert error["instances"] == [{"name": instance, "project": "default"}]
        assert f"instance {instance}" in error["detail"]
        assert set(error) == {"detail", "code", "instances", "request_id"}
        assert await lxd_profile(lxd_raw, profile) is not None
        got = await client.get(f"{API}/{profile}", headers=admin)
        assert got.json()["used_by"] == [f"/1.0/instances/{instance}"]
    finally:
        await delete_instance(lxd_raw, instance)
    deleted = await client.delete(f"{API}/{profile}", headers=admin)
    assert deleted.status_code == 204, deleted.text


async def test_the_default_profile_is_protected(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient
) -> None:
    admin = auth_headers("admin")
    deleted = await client.delete(f"{API}/default", headers=admin)
    assert deleted.status_code == 409, deleted.text  # LXD says 403
    assert deleted.json()["code"] == "default_profile_protected"
    renamed = await client.post(f"{API}/default/rename", json={"name": "other"}, headers=admin)
    assert renamed.status_code == 409, renamed.text
    assert renamed.json()["code"] == "default_profile_protected"
    assert await lxd_profile(lxd_raw, "default") is not None


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_writes_need_admin(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    profile: str,
    role: str,
) -> None:
    headers = auth_headers(role)
    assert (await client.get(f"{API}/{profile}", headers=headers)).status_code == 200
    writes = [
        client.post(API, json={"name": f"{profile}-x"}, headers=headers),
        client.put(f"{API}/{profile}", json={"config": {}}, headers=headers),
        client.patch(f"{API}/{profile}", json={"config": {"user.z": "1"}}, headers=headers),
        client.post(f"{API}/{profile}/rename", json={"name": f"{profile}-y"}, headers=headers),
        client.delete(f"{API}/{profile}", headers=headers),
    ]
    for write in writes:
        reply = await write
        assert reply.status_code == 403, reply.text
        assert reply.json()["code"] == "forbidden"
    in_lxd = await lxd_profile(lxd_raw, profile)
    assert in_lxd["config"] == {"user.a": "1"}
    for suffix in ("-x", "-y"):
        assert await lxd_profile(lxd_raw, f"{profile}{suffix}") is None


async def test_a_profile_in_a_project_of_its_own(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    made: list[tuple[str, str]],
    unique: Callable[[str], str],
) -> None:
    admin = auth_headers("admin")
    project, name, username = unique("tpp"), unique("tpr"), unique("tpv")
    reply = await lxd_raw.post("/1.0/projects", json={"name": project, "config": {}})
    assert reply.status_code == 201, reply.text
    try:
        made.append((name, project))
        params = {"project": project}
        created = await client.post(API, params=params, json={"name": name}, headers=admin)
        assert created.status_code == 201, created.text
        assert await lxd_profile(lxd_raw, name, project) is not None
        assert await lxd_profile(lxd_raw, name) is None  # not in the default project
        assert (await client.get(f"{API}/{name}", headers=admin)).status_code == 404

        tenant = await _project_viewer(client, admin, username, project)
        listed = await client.get(API, params=params, headers=tenant)
        assert listed.status_code == 200, listed.text
        assert sorted(p["name"] for p in listed.json()["items"]) == sorted(["default", name])
        unseen = await client.get(API, headers=tenant)  # the default project: none of its own
        assert unseen.status_code == 404
        refused = await client.delete(f"{API}/{name}", params=params, headers=tenant)
        assert refused.status_code == 403, refused.text

        patched = await client.patch(
            f"{API}/{name}", params=params, json={"description": "p"}, headers=admin
        )
        assert patched.status_code == 200, patched.text
        assert (await lxd_profile(lxd_raw, name, project))["description"] == "p"
        deleted = await client.delete(f"{API}/{name}", params=params, headers=admin)
        assert deleted.status_code == 204, deleted.text
        assert await lxd_profile(lxd_raw, name, project) is None
    finally:
        await client.delete(f"{V1}/users/{username}", headers=admin)
        await lxd_raw.delete(f"/1.0/profiles/{name}", params={"project": project})
        await remove_project(lxd_raw, project)


async def _project_viewer(
    client: httpx.AsyncClient, admin: dict[str, str], username: str, project: str
) -> dict[str, str]:
    """A user with no global role, viewer in `project` only; its auth headers."""
    body = {"username": username, "password": TEST_USER_PASSWORD, "role": "none"}
    reply = await client.post(f"{V1}/auth/register", json=body, headers=admin)
    assert reply.status_code == 201, reply.text
    url = f"{V1}/users/{username}/projects/{project}"
    reply = await client.put(url, json={"role": "viewer"}, headers=admin)
    assert reply.status_code == 200, reply.text
    login = {"username": username, "password": TEST_USER_PASSWORD}
    reply = await client.post(f"{V1}/auth/login", json=login)
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def test_unknown_profile_and_project(
    client: httpx.AsyncClient, auth_headers: Headers, unique: Callable[[str], str]
) -> None:
    admin = auth_headers("admin")
    missing = unique("tpm")
    replies = [
        await client.get(f"{API}/{missing}", headers=admin),
        await client.put(f"{API}/{missing}", json={}, headers=admin),
        await client.patch(f"{API}/{missing}", json={"description": "x"}, headers=admin),
        await client.post(f"{API}/{missing}/rename", json={"name": unique("z")}, headers=admin),
        await client.delete(f"{API}/{missing}", headers=admin),
    ]
    for reply in replies:
        assert reply.status_code == 404, reply.text
        assert reply.json()["detail"] == f"Profile {missing!r} not found"
    for path in (API, f"{API}/default"):
        reply = await client.get(path, params={"project": "no-such-proj"}, headers=admin)
        assert reply.status_code == 404, (path, reply.text)
        assert reply.json()["detail"] == "Project 'no-such-proj' not found"


async def test_bad_names_are_422(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, profile: str
) -> None:
    admin = auth_headers("admin")
    assert (await client.get(API, params={"project": "../x"}, headers=admin)).status_code == 422
    for bad in ("%2E%2E", "a%3Fb", "a%23b", "a%25b", "-a", "a%20b"):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/rename")):
            body = {"name": "fine"} if method == "POST" else None
            reply = await client.request(method, f"{API}/{bad}{suffix}", json=body, headers=admin)
            assert reply.status_code == 422, (bad, method, reply.text)
    for bad_name in ("a/b", "..", "", "x?", "a b", "-a"):
        reply = await client.post(API, json={"name": bad_name}, headers=admin)
        assert reply.status_code == 422, (bad_name, reply.text)
        reply = await client.post(f"{API}/{profile}/rename", json={"name": bad_name}, headers=admin)
        assert reply.status_code == 422, (bad_name, reply.text)
    assert await lxd_profile(lxd_raw, profile) is not None
