"""Project routes against a mocked LXD: the PATCH merge protocol (GET + PUT with If-Match,
retried on 412, never LXD's PATCH), and failures a real daemon will not produce on demand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.schemas.projects import ProjectCreate, ProjectPatch
from tests.support.fake_lxd import FakeLXD, client_for
from tests.support.lxd_replies import OP_ID, error, started, sync

PROJECT = {
    "name": "p1",
    "description": "d",
    "config": {"features.images": "true", "user.a": "1"},
    "used_by": ["/1.0/profiles/default?project=p1"],
}


async def test_patch_merges_and_retries_on_412(make_unit_app: Callable[..., Any]) -> None:
    etags = iter(['"e1"', '"e2"', '"e2"'])
    puts: list[str] = []

    def get(_: httpx.Request) -> httpx.Response:
        return sync(PROJECT, etag=next(etags))

    def put(request: httpx.Request) -> httpx.Response:
        puts.append(request.headers["If-Match"])
        return error(412, "ETag doesn't match") if len(puts) == 1 else sync({})

    fake = FakeLXD({("GET", "/1.0/projects/p1"): get, ("PUT", "/1.0/projects/p1"): put})
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        body = {"config": {"user.b": "2", "user.a": None}}
        reply = await http.patch("/api/v1/projects/p1", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    assert puts == ['"e1"', '"e2"']
    merged = {"description": "d", "config": {"features.images": "true", "user.b": "2"}}
    assert fake.sent("PUT", "/1.0/projects/p1") == [merged, merged]
    assert not [r for r in fake.requests if r.method == "PATCH"]


async def test_patch_with_a_stale_if_match_writes_nothing(
    make_unit_app: Callable[..., Any],
) -> None:
    fake = FakeLXD(
        {
            ("GET", "/1.0/projects/p1"): lambda _: sync(PROJECT, etag='"now"'),
            ("PUT", "/1.0/projects/p1"): lambda _: sync({}),
        }
    )
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        reply = await http.patch(
            "/api/v1/projects/p1",
            json={"description": "x"},
            headers={**headers, "If-Match": '"then"'},
        )
    assert reply.status_code == 412, reply.text
    assert reply.json()["code"] == "precondition_failed"
    assert fake.sent("PUT", "/1.0/projects/p1") == []


async def test_rename_failing_in_lxd_is_reported_on_wait(
    make_unit_app: Callable[..., Any],
) -> None:
    """Between our checks and LXD's, another client took the name: the operation fails."""
    failed = {
        "id": OP_ID,
        "status": "Failure",
        "status_code": 400,
        "err": 'A project named "p2" already exists',
    }
    fake = FakeLXD(
        {
            ("GET", "/1.0/projects/p1"): lambda _: sync(PROJECT),
            ("POST", "/1.0/projects/p1"): lambda _: started(),
            ("GET", f"/1.0/operations/{OP_ID}/wait"): lambda _: sync(failed),
        }
    )
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        reply = await http.post(
            "/api/v1/projects/p1/rename",
            params={"wait": "true"},
            json={"name": "p2"},
            headers=headers,
        )
    assert reply.status_code == 409, reply.text
    assert reply.json()["detail"] == failed["err"]


async def test_default_project_is_refused_before_lxd(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD({})
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        deleted = await http.delete("/api/v1/projects/default", headers=headers)
        renamed = await http.post(
            "/api/v1/projects/default/rename", json={"name": "x"}, headers=headers
        )
    for reply in (deleted, renamed):
        assert reply.status_code == 409, reply.text
        assert reply.json()["code"] == "default_project_protected"
    assert not [r for r in fake.requests if r.url.path.startswith("/1.0/projects")]


async def test_lxd_500_for_a_non_empty_project_is_409(make_unit_app: Callable[..., Any]) -> None:
    busy = {**PROJECT, "used_by": [*PROJECT["used_by"], "/1.0/instances/web1?project=p1"]}
    fake = FakeLXD(
        {
            ("GET", "/1.0/projects/p1"): lambda _: sync(busy),
            ("DELETE", "/1.0/projects/p1"): lambda _: error(
                500, "Only empty projects can be removed"
            ),
        }
    )
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        reply = await http.delete("/api/v1/projects/p1", headers=headers)
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "project_not_empty"
    assert "/1.0/instances/web1" in reply.json()["detail"]
    assert "profiles/default" not in reply.json()["detail"]


def test_config_values_become_strings() -> None:
    body = ProjectCreate.model_validate(
        {"name": "p", "config": {"limits.instances": 5, "features.images": False}}
    )
    assert body.config == {"limits.instances": "5", "features.images": "false"}
    patch = ProjectPatch.model_validate({"config": {"limits.cpu": 2, "user.x": None}})
    assert patch.config == {"limits.cpu": "2", "user.x": None}
