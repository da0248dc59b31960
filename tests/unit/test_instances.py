"""Faults a real LXD does not produce on demand, with a mocked LXD transport: a client that
goes away in the middle of an export, a creation that fails or outlasts its wait before the
start, and the file extension of an export."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.services.backups import archive_extension
from tests.support.auth import auth_for
from tests.support.lxd_replies import not_found, operation, started, sync

CHUNK = 1024 * 1024
CHUNKS = 64  # 64 MiB offered; a client that leaves early must not make us read it all


class TrackedStream(httpx.AsyncByteStream):
    """A large body that records how much was read and whether it was closed."""

    def __init__(self, chunks: int = CHUNKS) -> None:
        self.chunks = chunks
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            await asyncio.sleep(0)  # a socket read gives way to other tasks
            yield b"\x1f\x8b" + b"x" * (CHUNK - 2)

    async def aclose(self) -> None:
        self.closed = True


def _async(op_id: str, description: str) -> httpx.Response:
    return started(operation(op_id, description=description))


async def _call(
    app: FastAPI, path: str, headers: dict[str, str], *, leave_after: int, how: str
) -> list[dict[str, Any]]:
    """Drive the ASGI app like a server whose client goes away after `leave_after` body
    messages: `disconnect` (the server reports http.disconnect) or `oserror` (send fails)."""
    sent: list[dict[str, Any]] = []
    body_messages = 0
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal body_messages
        if message["type"] == "http.response.body":
            body_messages += 1
            if body_messages > leave_after:
                gone.set()
                if how == "oserror":
                    raise OSError("client went away")
                return
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4" if how == "oserror" else "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    # A server logs what the app raised and drops the connection: what matters is the cleanup.
    with contextlib.suppress(Exception):
        await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("how", ["disconnect", "oserror"])
async def test_export_closes_upstream_when_client_leaves(
    make_unit_app: Callable[..., Any], how: str
) -> None:
    stream = TrackedStream()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/export"):
            return httpx.Response(
                200,
                headers={
                    "Content-Length": str(CHUNK * CHUNKS),
                    "Content-Type": "application/octet-stream",
                },
                stream=stream,
            )
        return not_found("Not found")

    app = await make_unit_app(lxd_handler=handler)
    auth = await auth_for(app)
    sent = await _call(
        app,
        "/api/v1/instances/web1/backups/b1/export",
        auth.headers("operator"),
        leave_after=2,
        how=how,
    )
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(CHUNK * CHUNKS).encode()
    assert headers[b"content-disposition"] == b'attachment; filename="web1-b1.tar.gz"'
    assert stream.closed, "the upstream stream must be closed when the client goes away"
    assert stream.sent < CHUNKS, "we kept reading from LXD for a client that had left"
    # No message carries more than one chunk: nothing is buffered on the way.
    assert all(len(m.get("body", b"")) <= CHUNK for m in sent)


async def test_export_streams_everything(make_unit_app: Callable[..., Any]) -> None:
    stream = TrackedStream(chunks=5)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(CHUNK * 5)}, stream=stream)

    app = await make_unit_app(lxd_handler=handler)
    auth = await auth_for(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        reply = await http.get(
            "/api/v1/instances/web1/backups/b1/export", headers=auth.headers("operator")
        )
    assert reply.status_code == 200
    assert len(reply.content) == CHUNK * 5
    assert stream.closed


def _create_handler(calls: list[str], *, create_status: str) -> Callable[..., httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append(f"{request.method} {path}")
        if request.method == "GET" and path == "/1.0/instances/web1":
            return not_found("Not found")
        if request.method == "GET" and path == "/1.0/projects/default":
            return sync({"name": "default"})
        if request.method == "POST" and path == "/1.0/instances":
            assert "start" not in json.loads(request.content)
            return _async("op-create", "Creating instance")
        if path == "/1.0/operations/op-create/wait":
            failed = create_status == "Failure"
            op = {
                "id": "op-create",
                "status": create_status,
                "status_code": {"Failure": 400, "Running": 103}.get(create_status, 200),
                "err": "Failed creating instance: disk full" if failed else "",
            }
            return sync(op)
        if request.method == "PUT" and path == "/1.0/instances/web1/state":
            return _async("op-start", "Starting instance")
        return not_found("Not found")

    return handler


@pytest.mark.parametrize(
    ("create_status", "status", "words"),
    [
        ("Failure", 502, "disk full"),
        ("Running", 504, "op-create"),
    ],
)
async def test_create_and_start_stops_at_a_failed_creation(
    make_unit_app: Callable[..., Any], create_status: str, status: int, words: str
) -> None:
    calls: list[str] = []
    app = await make_unit_app(lxd_handler=_create_handler(calls, create_status=create_status))
    auth = await auth_for(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        reply = await http.post(
            "/api/v1/instances",
            params={"timeout": 1},
            json={"name": "web1", "source": {"type": "none"}, "start": True},
            headers=auth.headers("operator"),
        )
    assert reply.status_code == status, reply.text
    assert words in reply.json()["detail"]
    assert "PUT /1.0/instances/web1/state" not in calls


async def test_create_and_start_points_at_the_start(make_unit_app: Callable[..., Any]) -> None:
    calls: list[str] = []
    app = await make_unit_app(lxd_handler=_create_handler(calls, create_status="Success"))
    auth = await auth_for(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        reply = await http.post(
            "/api/v1/instances",
            json={"name": "web1", "source": {"type": "none"}, "start": True},
            headers=auth.headers("operator"),
        )
    assert reply.status_code == 202
    assert reply.json()["operation_id"] == "op-start"
    assert calls.index("POST /1.0/instances") < calls.index("PUT /1.0/instances/web1/state")


@pytest.mark.parametrize(
    ("head", "extension"),
    [
        (b"\x1f\x8b\x08\x00", "tar.gz"),
        (b"BZh91AY", "tar.bz2"),
        (b"\xfd7zXZ\x00\x00", "tar.xz"),
        (b"\x28\xb5\x2f\xfd\x00", "tar.zst"),
        (b"\x04\x22\x4d\x18", "tar.lz4"),
        (b"hsqs....", "squashfs"),
        (b"\x00" * 257 + b"ustar\x0000", "tar"),
        (b"", "backup"),
        (b"something else", "backup"),
    ],
)
def test_archive_extension(head: bytes, extension: str) -> None:
    assert archive_extension(head) == extension


# --- identical list reads in flight share their LXD requests ----------------------------------
async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_shared_reads_never_join_a_fetch_started_before_them() -> None:
    from app.services.listing import SharedReads

    shared = SharedReads()
    started: list[int] = []
    gates: list[asyncio.Event] = []

    async def fetch() -> list[Any]:
        number = len(started) + 1
        started.append(number)
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        return [number]  # which fetch answered

    first = asyncio.create_task(shared.get("k", fetch))
    await _settle()
    assert len(started) == 1
    # Three reads arrive while fetch 1 runs: they must not get its (older) answer...
    later = [asyncio.create_task(shared.get("k", fetch)) for _ in range(3)]
    other = asyncio.create_task(shared.get("other", fetch))  # another key: its own fetch
    await _settle()
    assert len(started) == 2
    gates[0].set()
    assert await first == [1]
    await _settle()
    # ... but share one fetch that started after fetch 1 ended.
    assert len(started) == 3
    gates[2].set()
    assert [await task for task in later] == [[3], [3], [3]]
    gates[1].set()
    assert await other == [2]


async def test_shared_reads_errors_and_cancelled_readers() -> None:
    from app.services.listing import SharedReads

    shared = SharedReads()
    gate = asyncio.Event()
    calls = 0

    async def failing() -> list[Any]:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise RuntimeError("LXD said no")

    first = asyncio.create_task(shared.get("k", failing))
    await _settle()
    waiting = [asyncio.create_task(shared.get("k", failing)) for _ in range(2)]
    await _settle()
    waiting[0].cancel()  # a client that went away does not cancel the others' fetch
    gate.set()
    with pytest.raises(RuntimeError):
        await first
    with pytest.raises(RuntimeError, match="LXD said no"):
        await waiting[1]
    assert waiting[0].cancelled()
    assert calls == 2
