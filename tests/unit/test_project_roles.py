"""Per-project roles without LXD: the pure rules (`app.auth.access`), the standing read beside
every request, and the binding routes against a mocked LXD."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth import access
from app.core.security import Role
from app.db.crud import get_standing, get_user_by_username
from tests.support.lxd_replies import error, streamed

V1 = "/api/v1"


@dataclass
class Member:
    role: str
    projects: Mapping[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("global_role", "bound", "expected"),
    [
        ("none", None, "none"),
        ("none", "viewer", "viewer"),
        ("none", "operator", "operator"),
        ("viewer", None, "viewer"),
        ("viewer", "operator", "operator"),
        ("operator", "viewer", "operator"),  # a binding never lowers the global role
        ("admin", "viewer", "admin"),
    ],
)
def test_role_in_a_project_is_the_higher_of_global_and_binding(
    global_role: str, bound: str | None, expected: str
) -> None:
    member = Member(global_role, {"p": bound} if bound else {})
    assert access.role_in(member, "p") == Role(expected)
    assert access.role_in(member, "other") == Role(global_role)
    assert access.global_role(member) == Role(global_role)


def test_who_sees_which_project() -> None:
    tenant = Member("none", {"a": "viewer", "b": "operator"})
    assert access.sees(tenant, "a")
    assert not access.sees(tenant, "default")
    assert not access.sees_every_project(tenant)
    assert access.visible(tenant, ["default", "a", "b", "c"]) == ["a", "b"]
    viewer = Member("viewer")
    assert access.sees_every_project(viewer)
    assert access.visible(viewer, ["default", "a"]) == ["default", "a"]
    assert access.visible(Member("none"), ["default"]) == []


async def test_standing_carries_the_bindings(
    unit_app: FastAPI,
    unit_client: httpx.AsyncClient,
    unit_auth_headers: Callable[..., dict[str, str]],
) -> None:
    async with unit_app.state.db_sessionmaker() as session:
        user = await get_user_by_username(session, "test-none")
        assert user is not None
        user_id = user.id
    standing = await get_standing(unit_app.state.db_engine, user_id)
    assert standing is not None
    assert standing.projects == {}
    assert standing.role == "none"
    assert await get_standing(unit_app.state.db_engine, 10**9) is None


def _lxd_with_projects(*names: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/1.0/projects/") and path.rsplit("/", 1)[-1] in names:
            name = path.rsplit("/", 1)[-1]
            meta = {"name": name, "config": {}, "description": "", "used_by": []}
            return streamed(meta)
        if path == "/1.0/projects":
            meta = [{"name": n, "config": {}, "description": "", "used_by": []} for n in names]
            if request.url.params.get("recursion") == "0":
                meta = [f"/1.0/projects/{n}" for n in names]
            return streamed(meta)
        if path == "/1.0/instances":
            return streamed([])
        return error(404, "Not Found")

    return handler


@pytest.fixture
async def tenant_app(make_unit_app: Callable[..., Any]) -> FastAPI:
    app: FastAPI = await make_unit_app(lxd_handler=_lxd_with_projects("default", "p1", "p2"))
    return app


async def test_binding_routes_and_what_the_tenant_sees(tenant_app: FastAPI) -> None:
    from tests.support.auth import auth_for

    auth = await auth_for(tenant_app)
    admin, tenant = auth.headers("admin"), auth.headers("none")
    transport = httpx.ASGITransport(app=tenant_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get(f"{V1}/projects", headers=tenant)).json()["items"] == []
        reply = await client.get(f"{V1}/instances", params={"project": "p1"}, headers=tenant)
        assert reply.status_code == 404
        assert reply.json() == {
            "detail": "Project 'p1' not found",
            "code": "not_found",
            "request_id": reply.headers["X-Request-ID"],
        }

        reply = await client.put(
            f"{V1}/users/test-none/projects/p1", json={"role": "operator"}, headers=admin
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["projects"] == {"p1": "operator"}
        reply = await client.put(
            f"{V1}/users/test-none/projects/p1", json={"role": "viewer"}, headers=admin
        )
        assert reply.json()["projects"] == {"p1": "viewer"}
        missing = await client.put(
            f"{V1}/users/test-none/projects/p9", json={"role": "viewer"}, headers=admin
        )
        assert missing.status_code == 404

        reply = await client.get(f"{V1}/instances", params={"project": "p1"}, headers=tenant)
        assert reply.status_code == 200
        projects = await client.get(f"{V1}/projects", headers=tenant)
        assert [p["name"] for p in projects.json()["items"]] == ["p1"]
        assert (await client.get(f"{V1}/projects/p1", headers=tenant)).status_code == 200
        assert (await client.get(f"{V1}/projects/p2", headers=tenant)).status_code == 404
        me = await client.get(f"{V1}/auth/me", headers=tenant)
        assert me.json()["projects"] == {"p1": "viewer"}
        users = await client.get(f"{V1}/users", headers=admin)
        by_name = {u["username"]: u for u in users.json()["items"]}
        assert by_name["test-none"]["projects"] == {"p1": "viewer"}

        gone = await client.delete(f"{V1}/users/test-none/projects/p1", headers=admin)
        assert gone.status_code == 204
        reply = await client.get(f"{V1}/instances", params={"project": "p1"}, headers=tenant)
        assert reply.status_code == 404
        again = await client.delete(f"{V1}/users/test-none/projects/p1", headers=admin)
        assert again.status_code == 404
        assert again.json()["code"] == "not_found"


async def test_a_none_user_may_still_manage_its_own_account(
    unit_client: httpx.AsyncClient, unit_auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = unit_auth_headers("none")
    assert (await unit_client.get(f"{V1}/auth/me", headers=headers)).status_code == 200
    reply = await unit_client.get(f"{V1}/storage/pools", headers=headers)
    assert reply.status_code == 403
    reply = await unit_client.get(f"{V1}/system/info", headers=headers)
    assert reply.status_code == 403


async def test_register_and_patch_take_the_role_none(
    unit_client: httpx.AsyncClient, unit_auth_headers: Callable[..., dict[str, str]]
) -> None:
    from tests.support.auth import TEST_USER_PASSWORD

    admin = unit_auth_headers("admin")
    body = {"username": "tenant1", "password": TEST_USER_PASSWORD, "role": "none"}
    reply = await unit_client.post(f"{V1}/auth/register", json=body, headers=admin)
    assert reply.status_code == 201
    assert reply.json()["role"] == "none"
    assert reply.json()["projects"] == {}
    reply = await unit_client.patch(f"{V1}/users/tenant1", json={"role": "viewer"}, headers=admin)
    assert reply.json()["role"] == "viewer"
