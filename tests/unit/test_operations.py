"""Operations and recorded-output exec against a mocked LXD: what LXD 5.0.2 here cannot show
(LXD 5.21+'s answers, odd replies, LXD away)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.auth import auth_for
from tests.support.fake_lxd import fake_lxd_handler
from tests.support.lxd_replies import error, started, sync
from tests.support.lxd_replies import operation as lxd_operation

OP_ID = "11111111-2222-3333-4444-555555555555"
Handler = Callable[[httpx.Request], httpx.Response]


def operation(status: str = "Running", code: int = 103, **metadata: Any) -> dict[str, Any]:
    """An exec operation (websocket class, its fds), `metadata` added to its metadata."""
    return lxd_operation(
        OP_ID,
        status=status,
        status_code=code,
        op_class="websocket",
        metadata={"command": ["sh"], "fds": {"0": "s0", "control": "sc"}, **metadata},
    )


@pytest.fixture
async def make_client(
    make_unit_app: Callable[..., Any],
) -> AsyncIterator[Callable[..., Any]]:
    clients: list[httpx.AsyncClient] = []

    async def build(handler: Handler) -> tuple[httpx.AsyncClient, dict[str, str]]:
        app: FastAPI = await make_unit_app(lxd_handler=handler)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        clients.append(http)
        return http, (await auth_for(app)).headers("operator")

    yield build
    for http in clients:
        await http.aclose()


async def test_wait_timeout_on_newer_lxd_is_the_running_operation(
    make_client: Callable[..., Any],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/1.0/operations/{OP_ID}/wait":
            # LXD 5.21+: a timeout is an error reply, not the operation.
            return error(504, "Operation wait timeout")
        if request.url.path == f"/1.0/operations/{OP_ID}":
            return sync(operation())
        return fake_lxd_handler(request)

    http, headers = await make_client(handler)
    reply = await http.get(f"/api/v1/operations/{OP_ID}/wait?timeout=1", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Running"
    assert "fds" not in reply.json()["metadata"]


async def test_list_keeps_unknown_groups_and_strips_secrets(
    make_client: Callable[..., Any],
) -> None:
    token = {**operation(), "class": "token", "metadata": {"secret": "t0ken"}}
    groups = {"running": [operation(), token], "success": [], "someday": [operation("Pending")]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/1.0/operations":
            return sync(groups)
        return fake_lxd_handler(request)

    http, headers = await make_client(handler)
    reply = await http.get("/api/v1/operations", headers=headers)
    assert reply.status_code == 200
    assert [item["status"] for item in reply.json()["items"]] == ["Running", "Running", "Pending"]
    assert "s0" not in reply.text
    assert "t0ken" not in reply.text


async def test_list_in_an_unknown_shape_is_502(make_client: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/1.0/operations":
            return sync(["/1.0/operations/x"])
        return fake_lxd_handler(request)

    http, headers = await make_client(handler)
    reply = await http.get("/api/v1/operations", headers=headers)
    assert reply.status_code == 502
    assert reply.json()["code"] == "lxd_bad_reply"


async def test_lxd_away_is_503(make_client: Callable[..., Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http, headers = await make_client(handler)
    reply = await http.get(f"/api/v1/operations/{OP_ID}", headers=headers)
    assert reply.status_code == 503
    assert reply.json()["code"] == "lxd_unavailable"


def exec_lxd(outputs: dict[str, str], seen: list[tuple[str, str]]) -> Handler:
    """An LXD whose exec finishes at once with `outputs` as its recorded files."""
    files = {
        "/1.0/instances/web1/logs/exec-output/exec_x.stdout": b"out\n",
        "/1.0/instances/web1/logs/exec-output/exec_x.stderr": b"err\n",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append((request.method, path))
        if request.method == "POST" and path == "/1.0/instances/web1/exec":
            return started({**operation(), "class": "task", "metadata": None})
        if path == f"/1.0/operations/{OP_ID}/wait":
            done = operation("Success", 200, output=outputs, **{"return": 0})
            return sync({**done, "class": "task"})
        if path in files:
            if request.method == "DELETE":
                return sync({})
            return httpx.Response(200, stream=httpx.ByteStream(files[path]))
        return fake_lxd_handler(request)

    return handler


async def test_exec_reads_and_deletes_the_newer_output_path(
    make_client: Callable[..., Any],
) -> None:
    seen: list[tuple[str, str]] = []
    outputs = {
        "1": "/1.0/instances/web1/logs/exec-output/exec_x.stdout",
        "2": "/1.0/instances/web1/logs/exec-output/exec_x.stderr",
    }
    http, headers = await make_client(exec_lxd(outputs, seen))
    reply = await http.post(
        "/api/v1/instances/web1/exec", json={"command": ["true"]}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    assert (reply.json()["stdout"], reply.json()["stderr"]) == ("out\n", "err\n")
    assert ("DELETE", outputs["1"]) in seen
    assert ("DELETE", outputs["2"]) in seen


async def test_exec_refuses_an_output_path_outside_the_instance(
    make_client: Callable[..., Any],
) -> None:
    seen: list[tuple[str, str]] = []
    outputs = {"1": "/1.0/instances/other/logs/exec_x.stdout", "2": "/1.0/certificates"}
    http, headers = await make_client(exec_lxd(outputs, seen))
    reply = await http.post(
        "/api/v1/instances/web1/exec", json={"command": ["true"]}, headers=headers
    )
    assert reply.status_code == 502
    assert not any(path in {outputs["1"], outputs["2"]} for _, path in seen)
