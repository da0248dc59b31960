"""The raw download path (`app/lxd/stream.py`) against a fake LXD on a unix socket:
framings and faults a real daemon does not produce on demand (chunked bodies, a body cut
short, a stall, a caller that stops early, no daemon at all)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from app import errors as exc
from app.core.config import Settings
from app.lxd import LXDClient, lxd_path
from app.lxd.stream import LXDDownload
from tests.support.lxd_replies import error_body

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
MiB = 1024 * 1024


class FakeLXDServer:
    """A raw HTTP server on a unix socket, in LXD's place: `handler` writes the reply to each
    connection; the request lines are recorded."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.requests: list[str] = []
        self.peer_closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.decode().split("\r\n", 1)[0])
        try:
            await self.handler(reader, writer)
        except (ConnectionError, OSError):
            self.peer_closed.set()
        finally:
            writer.close()

    async def __aenter__(self) -> FakeLXDServer:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        return self

    async def __aexit__(self, *args: object) -> None:
        assert self.server is not None
        self.server.close()


def reply_head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
async def make_lxd(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]]]:
    clients: list[LXDClient] = []
    fakes: list[FakeLXDServer] = []

    async def make(handler: Handler, timeout: float = 5) -> tuple[FakeLXDServer, LXDClient]:
        socket_path = tmp_path / f"lxd{len(fakes)}.socket"
        fake = await FakeLXDServer(socket_path, handler).__aenter__()
        fakes.append(fake)
        settings = make_settings(LXD_SOCKET_PATH=str(socket_path), LXD_TIMEOUT=timeout)
        lxd = LXDClient(settings)
        clients.append(lxd)
        return fake, lxd

    yield make
    for lxd in clients:
        await lxd.close()
    for fake in fakes:
        await fake.__aexit__()


async def read_all(lxd: LXDClient, path: str) -> tuple[bytes, list[int]]:
    sizes: list[int] = []
    body = b""
    async with lxd.stream(path, project="p1") as response:
        assert isinstance(response, LXDDownload)
        async for chunk in lxd.iter_bytes(response):
            sizes.append(len(chunk))
            body += chunk
    assert response.is_closed
    return body, sizes


async def test_content_length_body(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    payload = bytes(range(256)) * (3 * 4096 + 7)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(200, {"Content-Length": str(len(payload))}))
        for start in range(0, len(payload), 100_000):
            writer.write(payload[start : start + 100_000])
            await writer.drain()

    fake, lxd = await make_lxd(handler)
    body, sizes = await read_all(lxd, lxd_path("instances", "a b", "backups", "b1", "export"))
    assert body == payload
    assert max(sizes) <= MiB
    assert fake.requests == ["GET /1.0/instances/a%20b/backups/b1/export?project=p1 HTTP/1.1"]


async def test_chunked_body(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    parts = [b"hello ", b"x" * 70_000, b" world"]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(200, {"Transfer-Encoding": "chunked"}))
        for part in parts:
            writer.write(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n")
        writer.write(b"0\r\nX-Trailer: 1\r\n\r\n")
        await writer.drain()

    _, lxd = await make_lxd(handler)
    body, _ = await read_all(lxd, lxd_path("instances", "a", "console"))
    assert body == b"".join(parts)


async def test_body_until_eof(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(200, {}) + b"no length, closed at the end")
        await writer.drain()

    _, lxd = await make_lxd(handler)
    body, _ = await read_all(lxd, lxd_path("instances", "a", "logs", "lxc.log"))
    assert body == b"no length, closed at the end"


async def test_error_reply_is_typed(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    error = json.dumps(error_body(404, "not found")).encode()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(404, {"Content-Length": str(len(error))}) + error)
        await writer.drain()

    _, lxd = await make_lxd(handler)
    with pytest.raises(exc.LXDNotFound):
        async with lxd.stream(lxd_path("instances", "missing", "console")):
            pass


async def test_short_body_is_bad_gateway(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(200, {"Content-Length": "1000"}) + b"only this")
        await writer.drain()

    _, lxd = await make_lxd(handler)
    with pytest.raises(exc.LXDBadGateway, match="short"):
        await read_all(lxd, lxd_path("instances", "a", "backups", "b", "export"))


async def test_stall_is_timeout(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(200, {"Content-Length": "1000"}) + b"some")
        await writer.drain()
        await asyncio.sleep(5)

    _, lxd = await make_lxd(handler, timeout=0.3)
    with pytest.raises(exc.LXDTimeout):
        await read_all(lxd, lxd_path("instances", "a", "backups", "b", "export"))


async def test_no_answer_is_timeout(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    _, lxd = await make_lxd(handler, timeout=0.3)
    with pytest.raises(exc.LXDTimeout):
        async with lxd.stream(lxd_path("instances", "a", "console")):
            pass


async def test_garbage_reply_is_bad_gateway(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()

    _, lxd = await make_lxd(handler)
    with pytest.raises(exc.LXDBadGateway):
        async with lxd.stream(lxd_path("instances", "a", "console")):
            pass


async def test_caller_stopping_early_closes_the_connection(
    make_lxd: Callable[..., Awaitable[tuple[FakeLXDServer, LXDClient]]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply_head(200, {"Content-Length": str(1024 * MiB)}))
        block = b"z" * MiB
        for _ in range(1024):  # 1 GiB offered; the caller reads two chunks and leaves
            writer.write(block)
            await writer.drain()

    fake, lxd = await make_lxd(handler)
    async with lxd.stream(lxd_path("instances", "a", "backups", "b", "export")) as response:
        got = 0
        async for chunk in lxd.iter_bytes(response):
            got += len(chunk)
            if got >= 2 * MiB:
                break
    await asyncio.wait_for(fake.peer_closed.wait(), 5)


async def test_no_daemon_is_unavailable(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    lxd = LXDClient(make_settings(LXD_SOCKET_PATH=str(tmp_path / "none.socket")))
    try:
        with pytest.raises(exc.LXDUnavailable):
            async with lxd.stream(lxd_path("instances", "a", "console")):
                pass
    finally:
        await lxd.close()
