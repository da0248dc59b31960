"""Projects through the API against the real LXD (both modes), read back with `lxd_raw`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import Headers, assert_error
from tests.support.projects import make_project, new_name, raw_project, remove_projects

API = "/api/v1/projects"


@pytest.fixture
async def projects(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Names of projects a test may create; all removed afterwards."""
    names: list[str] = []
    yield names
    await remove_projects(lxd_raw, names)


# --- create, read, list ------------------------------------------------------------------------
async def test_create_project(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = new_name(projects)
    body = {"name": name, "description": "made by a test", "config": {"limits.instances": 3}}
    reply = await client.post(API, json=body, headers=auth_headers("admin"))
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"{API}/{name}"
    assert reply.headers.get("etag")
    data = reply.json()
    assert data["name"] == name
    assert data["config"]["limits.instances"] == "3"

    stored = await raw_project(lxd_raw, name)
    assert stored is not None
    assert stored["description"] == "made by a test"
    assert stored["config"]["limits.instances"] == "3"
    assert stored["config"]["features.images"] == "true"


async def test_create_duplicate_is_409(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    reply = await client.post(API, json={"name": name}, headers=auth_headers("admin"))
    body = assert_error(reply, 409, "conflict")
    assert name in body["detail"]


async def test_create_bad_input(
    client: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    headers = auth_headers("admin")
    for name in ("a/b", "..", "-x", "a b", "x" * 64):
        reply = await client.post(API, json={"name": name}, headers=headers)
        assert_error(reply, 422, "validation_error")
    reply = await client.post(API, json={"name": "x", "bogus": 1}, headers=headers)
    assert_error(reply, 422, "validation_error")
    # A config key LXD does not know: LXD's own message, as a 400.
    name = new_name(projects)
    reply = await client.post(
        API, json={"name": name, "config": {"no.such.key": "1"}}, headers=headers
    )
    body = assert_error(reply, 400, "bad_request")
    assert "no.such.key" in body["detail"]


async def test_list_projects(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    reply = await client.get(API, headers=auth_headers("viewer"))
    assert reply.status_code == 200, reply.text
    page = reply.json()
    assert set(page) == {"items", "total", "limit", "offset"}
    by_name = {item["name"]: item for item in page["items"]}
    assert {"default", name} <= set(by_name)
    assert "config" in by_name[name]

    reply = await client.get(API, params={"expand": "false"}, headers=auth_headers("viewer"))
    names = reply.json()["items"]
    assert "default" in names
    assert name in names

    reply = await client.get(API, params={"limit": 1, "offset": 0}, headers=auth_headers())
    page = reply.json()
    assert len(page["items"]) == 1
    assert page["total"] >= 2
    assert page["limit"] == 1


async def test_get_project_and_state(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects, {"limits.instances": "4"})
    reply = await client.get(f"{API}/{name}", headers=auth_headers("viewer"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["name"] == name
    raw = await lxd_raw.get(f"/1.0/projects/{name}")
    assert reply.headers["etag"] == raw.headers["etag"]

    reply = await client.get(f"{API}/{name}/state", headers=auth_headers("viewer"))
    assert reply.status_code == 200, reply.text
    instances = reply.json()["resources"]["instances"]
    assert instances == {"Limit": 4, "Usage": 0}


async def test_unknown_and_bad_names(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    headers = auth_headers("admin")
    missing = f"tp-missing-{uuid.uuid4().hex[:6]}"
    for method, path in (
        ("GET", f"{API}/{missing}"),
        ("GET", f"{API}/{missing}/state"),
        ("DELETE", f"{API}/{missing}"),
    ):
        reply = await client.request(method, path, headers=headers)
        assert_error(reply, 404, "not_found")
    reply = await client.put(f"{API}/{missing}", json={}, headers=headers)
    assert_error(reply, 404, "not_found")
    reply = await client.patch(f"{API}/{missing}", json={"description": "x"}, headers=headers)
    assert_error(reply, 404, "not_found")
    reply = await client.post(f"{API}/{missing}/rename", json={"name": "zz"}, headers=headers)
    assert_error(reply, 404, "not_found")
    # Names that would leave their path segment: `?` and `#` fail the name pattern; `..`
    # (sent encoded, so that no client normalizes it away), `%2F` and `%5C` are refused from
    # the raw path before routing. Nothing reaches LXD.
    for bad in ("a%3Fb", "a%23b"):
        reply = await client.get(f"{API}/{bad}", headers=headers)
        assert_error(reply, 422, "validation_error")
    for bad in ("%2E%2E", "a%5Cb", "default%2F..%2Fcertificates", "%2e%2e/state"):
        reply = await client.get(f"{API}/{bad}", headers=headers)
        assert_error(reply, 422)
    reply = await client.post(f"{API}/%2E%2E/rename", json={"name": "zz"}, headers=headers)
    assert_error(reply, 422)


# --- roles -------------------------------------------------------------------------------------
async def test_roles(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, projects: list
) -> None:
    name = await make_project(lxd_raw, projects)
    assert_error(await client.get(API), 401)
    assert (await client.get(f"{API}/{name}", headers=auth_headers("viewer"))).status_code == 200
    for role in ("viewer", "operator"):
        headers = auth_headers(role)
        assert_error(await client.post(API, json={"name": "zz"}, headers=headers), 403)
        assert_error(await client.patch(f"{API}/{name}", json={}, headers=headers), 403)
        assert_error(await client.put(f"{API}/{name}", json={}, headers=headers), 403)
        assert_error(await client.delete(f"{API}/{name}", headers=headers), 403)
        reply = await client.post(f"{API}/{name}/rename", json={"name": "zz"}, headers=headers)
        assert_error(reply, 403)
    assert await raw_project(lxd_raw, name) is not None
