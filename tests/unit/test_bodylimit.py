"""Request body limits (`app.core.bodylimit`): 413 before auth and before parsing, whether the
size is declared (`Content-Length`) or only found out while the body streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from app.core.bodylimit import FILE_UPLOAD_ROUTE, BodyLimitMiddleware, route_pattern
from app.core.config import Settings

KIB = 1024
MIB = 1024 * KIB


def http_scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            *(headers or []),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Body:
    """An ASGI `receive` that streams `total` bytes in `chunk`-sized messages, made on demand
    (nothing is allocated up front), and counts what was pulled."""

    def __init__(self, total: int, chunk: int = 4 * KIB) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        size = min(self.chunk, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.pulled < self.total}


class Sent:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.messages if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return {k.decode().lower(): v.decode() for k, v in start["headers"]}

    def json(self) -> Any:
        body = b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )
        return json.loads(body)


@pytest.fixture
async def app(make_unit_app: Callable[..., Any]) -> FastAPI:
    application: FastAPI = await make_unit_app()
    return application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def json_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every `Request.json()` (FastAPI's body parsing) while the test runs."""
    calls: list[int] = []
    original = Request.json

    async def spy(self: Request) -> Any:
        calls.append(1)
        return await original(self)

    monkeypatch.setattr(Request, "json", spy)
    return calls


def chunks(total: int, size: int = 64 * KIB) -> Callable[[], AsyncIterator[bytes]]:
    async def gen() -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            part = min(size, total - sent)
            sent += part
            yield b" " * part

    return gen


def assert_413(reply: httpx.Response) -> None:
    assert reply.status_code == 413, reply.text
    body = reply.json()
    assert body["code"] == "payload_too_large"
    assert set(body) == {"detail", "code", "request_id"}
    assert body["request_id"] == reply.headers["x-request-id"]


# --- through the whole app ------------------------------------------------------------------
async def test_content_length_over_the_limit_is_refused_without_reading(app: FastAPI) -> None:
    body = Body(2 * MIB)
    sent = Sent()
    headers = [(b"content-length", str(2 * MIB).encode()), (b"x-request-id", b"big-1")]
    await app(http_scope("/api/v1/instances", headers), body, sent)
    assert sent.status == 413
    assert body.calls == 0  # not one byte read
    assert sent.headers["x-request-id"] == "big-1"
    assert sent.headers["connection"] == "close"
    reply = sent.json()
    assert reply == {
        "detail": "Request body too large: at most 1048576 bytes",
        "code": "payload_too_large",
        "request_id": "big-1",
    }


async def test_content_length_over_via_http(
    http: httpx.AsyncClient, json_parses: list[int]
) -> None:
    reply = await http.post("/api/v1/instances", content=b"{" + b" " * MIB + b"}")
    assert_413(reply)
    assert json_parses == []


async def test_streamed_body_over_the_limit_is_refused(
    http: httpx.AsyncClient, json_parses: list[int]
) -> None:
    reply = await http.post(
        "/api/v1/instances",
        content=chunks(2 * MIB)(),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in reply.request.headers
    assert_413(reply)
    assert json_parses == []  # the body of a 413 is never parsed


async def test_under_the_limit_goes_on_to_auth(
    http: httpx.AsyncClient, json_parses: list[int]
) -> None:
    payload = json.dumps({"name": "c1", "pad": "x" * (900 * KIB)})
    reply = await http.post("/api/v1/instances", content=payload)
    assert reply.status_code == 401  # past the limit: the route's own auth answers
    streamed = await http.post(
        "/api/v1/instances",
        content=chunks(len(payload))(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code in {401, 422}


async def test_exactly_the_limit_is_allowed(app: FastAPI) -> None:
    body = Body(MIB)
    sent = Sent()
    await app(http_scope("/api/v1/instances", [(b"content-length", str(MIB).encode())]), body, sent)
    assert sent.status != 413
    assert body.pulled == MIB


async def test_auth_routes_have_the_smaller_limit(
    http: httpx.AsyncClient, json_parses: list[int]
) -> None:
    big = json.dumps({"username": "admin", "password": "x" * (20 * KIB)})
    assert_413(await http.post("/api/v1/auth/login", content=big))
    assert_413(
        await http.post(
            "/api/v1/auth/refresh",
            content=chunks(20 * KIB, 1024)(),
            headers={"content-type": "application/json"},
        )
    )
    assert json_parses == []
    # The same size elsewhere is no problem, and a normal login body passes.
    assert (await http.post("/api/v1/instances", content=big)).status_code == 401
    small = {"username": "nobody", "password": "wrong-password"}
    assert (await http.post("/api/v1/auth/login", json=small)).status_code == 401


async def test_50_mb_streamed_to_refresh_is_cut_after_16_kib(app: FastAPI) -> None:
    """Unauthenticated, no Content-Length: reading stops at the limit, so memory cannot grow
    with the body."""
    body = Body(50 * MIB, chunk=4 * KIB)
    sent = Sent()
    await app(http_scope("/api/v1/auth/refresh"), body, sent)
    assert sent.status == 413
    assert sent.json()["code"] == "payload_too_large"
    assert body.pulled <= 16 * KIB + body.chunk
    assert body.pulled > 16 * KIB  # the limit was reached, not guessed


async def test_50_mb_declared_to_refresh_reads_nothing(app: FastAPI) -> None:
    body = Body(50 * MIB)
    sent = Sent()
    await app(
        http_scope("/api/v1/auth/refresh", [(b"content-length", str(50 * MIB).encode())]),
        body,
        sent,
    )
    assert sent.status == 413
    assert body.calls == 0


async def test_the_413_is_logged_with_its_request_id(
    make_unit_app: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    application: FastAPI = await make_unit_app()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.post(
            "/api/v1/auth/login", content=b"x" * (17 * KIB), headers={"X-Request-ID": "r413"}
        )
    assert reply.status_code == 413
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    logged = [line for line in lines if line.get("event") == "http.request"]
    assert logged
    assert logged[-1]["status"] == 413
    assert logged[-1]["request_id"] == "r413"


async def test_a_route_reading_the_stream_itself_gets_a_quiet_413(
    make_unit_app: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A route that reads `request.stream()` itself meets the cut as a disconnect: the client
    gets the 413, and there is no 500 and no error in the log."""
    application: FastAPI = await make_unit_app()
    read: list[int] = []

    @application.post("/api/v1/test/stream")
    async def stream(request: Request) -> dict[str, int]:
        async for chunk in request.stream():
            read.append(len(chunk))
        return {"read": sum(read)}

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.post("/api/v1/test/stream", content=chunks(2 * MIB, 64 * KIB)())
        cut_at = sum(read)
        read.clear()
        small = await client.post("/api/v1/test/stream", content=chunks(100 * KIB, 64 * KIB)())
    assert_413(reply)
    assert cut_at <= MIB
    assert small.json() == {"read": 100 * KIB}
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert [line for line in lines if line.get("level") in {"error", "critical"}] == []


# --- the middleware alone ----------------------------------------------------------------------
def reader_app(seen: dict[str, Any]) -> Callable[[Scope, Receive, Send], Any]:
    """Reads the whole body the way Starlette does, then answers 200 (if it gets there)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["called"] = True
        seen["bytes"] = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen["disconnect"] = True
                return
            seen["bytes"] += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def limited(app: Any, **overrides: Any) -> BodyLimitMiddleware:
    values = {"max_body_bytes": 100, "max_auth_body_bytes": 10, **overrides}
    return BodyLimitMiddleware(app, **values)


async def test_the_app_never_runs_on_a_declared_overflow() -> None:
    seen: dict[str, Any] = {}
    sent = Sent()
    await limited(reader_app(seen))(
        http_scope("/x", [(b"content-length", b"101")]), Body(101), sent
    )
    assert sent.status == 413
    assert seen == {}


async def test_a_streamed_overflow_reaches_the_app_as_a_disconnect() -> None:
    seen: dict[str, Any] = {}
    sent = Sent()
    body = Body(1000, chunk=30)
    await limited(reader_app(seen))(http_scope("/x"), body, sent)
    assert sent.status == 413
    assert seen["disconnect"] is True
    assert seen["bytes"] <= 100  # the chunk that crossed the limit was not passed on
    assert body.pulled == 120
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.body"]


async def test_a_started_response_is_left_alone_and_reading_stops() -> None:
    reads: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(10):
            message = await receive()
            reads.append(message)
        await send({"type": "http.response.body", "body": b"done"})

    sent = Sent()
    body = Body(10_000, chunk=40)
    await limited(app)(http_scope("/x"), body, sent)
    assert sent.status == 200
    assert sent.messages[-1]["body"] == b"done"
    kinds = [m["type"] for m in reads]
    assert kinds[:2] == ["http.request", "http.request"]
    assert set(kinds[2:]) == {"http.disconnect"}
    assert body.pulled == 120  # nothing read after the limit


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1/auth/login", 10),
        ("/api/v1/auth/refresh", 10),
        ("/api/v1/auth", 10),
        ("/api/v1/authx", 100),
        ("/api/v1/instances", 100),
        ("/api/v1/big/upload", 5000),
        ("/api/v1/big", 100),
    ],
)
def test_limit_for(path: str, limit: int) -> None:
    middleware = limited(None, path_limits={"/api/v1/big/": 5000})
    assert middleware.limit_for(path) == limit


def test_limits_must_be_positive(make_settings: Callable[..., Settings]) -> None:
    for name in ("MAX_BODY_BYTES", "MAX_AUTH_BODY_BYTES", "WS_MAX_SESSIONS_PER_USER"):
        with pytest.raises(ValidationError, match=name):
            make_settings(**{name: 0})
    settings = make_settings()
    assert (settings.MAX_BODY_BYTES, settings.MAX_AUTH_BODY_BYTES) == (MIB, 16 * KIB)
    assert settings.WS_MAX_SESSIONS_PER_USER == 16


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1/instances/web1/files", 7000),
        ("/api/v1/instances/a-b.c/files", 7000),
        ("/api/v1/instances/web1/files/", 100),
        ("/api/v1/instances/web1/filesx", 100),
        ("/api/v1/instances//files", 100),
        ("/api/v1/instances/a/b/files", 100),  # a name is one segment
        ("/api/v1/instances/web1/files/x", 100),
        ("/api/v1/instances/web1", 100),
        ("/api/v1/auth/instances/web1/files", 10),
    ],
)
def test_route_limits_match_the_whole_path(path: str, limit: int) -> None:
    middleware = limited(None, route_limits={FILE_UPLOAD_ROUTE: 7000})
    assert middleware.limit_for(path) == limit


def test_route_pattern_escapes_the_template() -> None:
    pattern = route_pattern("/a.b/{x}/c+d")
    assert pattern.match("/a.b/1/c+d")
    assert not pattern.match("/aXb/1/c+d")
    assert not pattern.match("/a.b/1/ccd")


async def test_the_file_upload_limit_is_a_setting(
    make_settings: Callable[..., Settings], make_unit_app: Callable[..., Any]
) -> None:
    assert make_settings().MAX_FILE_UPLOAD_BYTES == 4 * 1024**3
    with pytest.raises(ValidationError, match="MAX_FILE_UPLOAD_BYTES"):
        make_settings(MAX_FILE_UPLOAD_BYTES=0)
    app = await make_unit_app(make_settings(MAX_FILE_UPLOAD_BYTES=5000))
    files = [(b"content-length", b"5001")]
    sent = Sent()
    await app(http_scope("/api/v1/instances/web1/files", files), Body(5001), sent)
    assert sent.status == 413
    assert sent.json()["detail"] == "Request body too large: at most 5000 bytes"
