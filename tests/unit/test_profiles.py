"""Profile routes against a mocked LXD: LXD 5.0.2's answers (500s, 403s, 404s that mean bad
input), turned into the project's error shape, and what is sent to LXD."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.services.profiles import instances_of
from tests.support.auth import auth_for
from tests.support.fake_lxd import FakeLXD
from tests.support.lxd_replies import error, streamed, sync

API = "/api/v1/profiles"
PROFILE = {
    "name": "web",
    "description": "d",
    "config": {"limits.cpu": "1"},
    "devices": {},
    "used_by": [],
}
IN_USE = {
    **PROFILE,
    "used_by": ["/1.0/instances/web1", "/1.0/instances/db%2D1?project=tenant-a"],
}


async def call(
    make_unit_app: Callable[..., Any],
    fake: FakeLXD,
    method: str,
    url: str,
    role: str = "admin",
    **kwargs: Any,
) -> httpx.Response:
    app = await make_unit_app(lxd_handler=fake)
    headers = {**(await auth_for(app)).headers(role), **kwargs.pop("headers", {})}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.request(method, url, headers=headers, **kwargs)


async def test_list_is_sorted_and_paged(make_unit_app: Callable[..., Any]) -> None:
    items = [{**PROFILE, "name": n} for n in ("web", "default", "db")]
    fake = FakeLXD({("GET", "/1.0/profiles"): lambda _: streamed(items)})
    reply = await call(make_unit_app, fake, "GET", API, "viewer", params={"limit": 2})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [p["name"] for p in body["items"]] == ["db", "default"]
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 0)
    assert fake.requests[0].url.params["recursion"] == "1"


async def test_list_names_only(make_unit_app: Callable[..., Any]) -> None:
    urls = ["/1.0/profiles/web", "/1.0/profiles/default"]
    fake = FakeLXD({("GET", "/1.0/profiles"): lambda _: streamed(urls)})
    reply = await call(make_unit_app, fake, "GET", API, "viewer", params={"expand": "false"})
    assert reply.json()["items"] == ["default", "web"]
    assert fake.requests[0].url.params["recursion"] == "0"


async def test_unknown_project_is_a_404(make_unit_app: Callable[..., Any]) -> None:
    missing = error(404, 'Failed loading project "nope": Project not found')
    fake = FakeLXD({("GET", "/1.0/profiles/web"): lambda _: missing})
    reply = await call(make_unit_app, fake, "GET", f"{API}/web", params={"project": "nope"})
    assert reply.status_code == 404
    assert reply.json()["detail"] == "Project 'nope' not found"


async def test_get_passes_the_etag(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD({("GET", "/1.0/profiles/web"): lambda _: sync(PROFILE, etag='"e1"')})
    reply = await call(make_unit_app, fake, "GET", f"{API}/web", "viewer")
    assert reply.status_code == 200
    assert reply.headers["etag"] == '"e1"'
    assert reply.json()["config"] == {"limits.cpu": "1"}


async def test_delete_in_use_lists_the_instances(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD(
        {
            ("DELETE", "/1.0/profiles/web"): lambda _: error(500, "Profile is currently in use"),
            ("GET", "/1.0/profiles/web"): lambda _: sync(IN_USE),
        }
    )
    reply = await call(make_unit_app, fake, "DELETE", f"{API}/web")
    assert reply.status_code == 409, reply.text
    body = reply.json()
    assert body["code"] == "in_use"
    assert body["instances"] == [
        {"name": "web1", "project": "default"},
        {"name": "db-1", "project": "tenant-a"},
    ]
    assert "instance web1" in body["detail"]
    assert "/1.0/" not in body["detail"]
    assert body["request_id"]


@pytest.mark.parametrize("action", ["delete", "rename"])
async def test_the_default_profile_is_protected(
    make_unit_app: Callable[..., Any], action: str
) -> None:
    fake = FakeLXD({})
    if action == "delete":
        reply = await call(make_unit_app, fake, "DELETE", f"{API}/default")
    else:
        url = f"{API}/default/rename"
        reply = await call(make_unit_app, fake, "POST", url, json={"name": "other"})
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "default_profile_protected"
    assert not [r for r in fake.requests if "/profiles" in r.url.path]  # LXD was not asked


async def test_rename_of_a_missing_profile_is_a_404(make_unit_app: Callable[..., Any]) -> None:
    """LXD 5.0.2: 500 "Query affected 0 rows instead of 1"."""
    fake = FakeLXD(
        {("POST", "/1.0/profiles/gone"): lambda _: error(500, "Query affected 0 rows instead of 1")}
    )
    reply = await call(make_unit_app, fake, "POST", f"{API}/gone/rename", json={"name": "x"})
    assert reply.status_code == 404, reply.text
    assert reply.json()["detail"] == "Profile 'gone' not found"


async def test_rename_to_a_taken_name_is_a_409(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD(
        {
            ("POST", "/1.0/profiles/web"): lambda _: error(500, 'Name "db" already in use'),
            ("GET", "/1.0/profiles/web"): lambda _: sync(PROFILE),
        }
    )
    reply = await call(make_unit_app, fake, "POST", f"{API}/web/rename", json={"name": "db"})
    assert reply.status_code == 409, reply.text
    assert reply.json()["detail"] == "Profile 'db' already exists"


async def test_create_duplicate_is_a_409(make_unit_app: Callable[..., Any]) -> None:
    taken = error(500, 'Error inserting "web" into database: The profile already exists')
    fake = FakeLXD({("POST", "/1.0/profiles"): lambda _: taken})
    reply = await call(make_unit_app, fake, "POST", API, json={"name": "web"})
    assert reply.status_code == 409, reply.text
    assert reply.json() | {"request_id": ""} == {
        "detail": "Profile 'web' already exists",
        "code": "conflict",
        "request_id": "",
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, 'Device validation failed for "eth0": Failed to load network "x": Network not found'),
        (500, 'Device validation failed for "x": Failed loading device "x": Unsupported device'),
    ],
)
async def test_a_device_lxd_refuses_is_a_400(
    make_unit_app: Callable[..., Any], status: int, message: str
) -> None:
    fake = FakeLXD({("PATCH", "/1.0/profiles/web"): lambda _: error(status, message)})
    body = {"devices": {"eth0": {"type": "nic", "network": "x"}}}
    reply = await call(make_unit_app, fake, "PATCH", f"{API}/web", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "bad_request"


async def test_put_passes_if_match_and_answers_412(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD(
        {("PUT", "/1.0/profiles/web"): lambda _: error(412, "ETag doesn't match: a vs b")}
    )
    reply = await call(
        make_unit_app, fake, "PUT", f"{API}/web", json={"config": {}}, headers={"If-Match": '"b"'}
    )
    assert reply.status_code == 412, reply.text
    assert reply.json()["code"] == "precondition_failed"
    (put,) = [r for r in fake.requests if r.method == "PUT"]
    assert put.headers["If-Match"] == '"b"'
    assert json.loads(put.content) == {"description": "", "config": {}, "devices": {}}


async def test_patch_sends_only_what_was_given(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD(
        {
            ("PATCH", "/1.0/profiles/web"): lambda _: sync({}),
            ("GET", "/1.0/profiles/web"): lambda _: sync(PROFILE, etag='"e2"'),
        }
    )
    body = {"config": {"limits.cpu": 2, "security.nesting": True}}
    reply = await call(make_unit_app, fake, "PATCH", f"{API}/web", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.headers["etag"] == '"e2"'
    assert fake.sent("PATCH", "/1.0/profiles/web") == [
        {"config": {"limits.cpu": "2", "security.nesting": "true"}}
    ]


@pytest.mark.parametrize(
    "body",
    [{"devices": {"eth0": None}}, {"config": {"a": None}}, {"name": "x"}, {"config": {"a b": "1"}}],
)
async def test_bad_patch_bodies_are_422(
    make_unit_app: Callable[..., Any], body: dict[str, Any]
) -> None:
    fake = FakeLXD({})
    reply = await call(make_unit_app, fake, "PATCH", f"{API}/web", json=body)
    assert reply.status_code == 422, reply.text
    assert not [r for r in fake.requests if "/profiles" in r.url.path]


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_writes_need_admin(make_unit_app: Callable[..., Any], role: str) -> None:
    fake = FakeLXD({})
    reply = await call(make_unit_app, fake, "POST", API, role, json={"name": "web"})
    assert reply.status_code == 403, reply.text
    assert not [r for r in fake.requests if "/profiles" in r.url.path]


def test_instances_of_reads_lxd_urls() -> None:
    used_by = [
        "/1.0/instances/a",
        "/1.0/instances/b?project=p1",
        "/1.0/instances/a/snapshots/s1",
        "/1.0/profiles/x",
    ]
    assert instances_of(used_by) == [
        {"name": "a", "project": "default"},
        {"name": "b", "project": "p1"},
    ]
