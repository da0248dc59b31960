"""Streamed GETs from LXD read straight off a connection of their own (downloads: backup
exports, log files, recorded exec output).

httpx reads a body 64 KiB at a time through h11 and then re-chunks it: for a backup of
hundreds of MB that is a third of what the socket gives (LXD.md §16; `bench/backup_export.py`).
Here a download opens its own connection, sends one `GET` with `Connection: close`, parses the
status line and headers, and reads the body in large reads (Content-Length, chunked, or up to
EOF). On the unix socket the body is read with `sock_recv` (each read one new bytes object,
handed on as it is); over TLS an asyncio stream does the decryption. Closing a download closes
its connection, which is how LXD learns that a client went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from app.errors import LXDBadGateway, LXDTimeout, LXDUnavailable

MAX_HEAD = 64 * 1024
MAX_ERROR_BODY = 1024 * 1024
READ_BUFFER_LIMIT = 1024 * 1024  # TLS: the StreamReader pauses the socket past twice this


@dataclass(frozen=True)
class UnixEndpoint:
    path: str


@dataclass(frozen=True)
class TLSEndpoint:
    host: str
    port: int
    context: ssl.SSLContext


Connector = UnixEndpoint | TLSEndpoint


def unix_connector(socket_path: str) -> Connector:
    return UnixEndpoint(socket_path)


def tls_connector(host: str, port: int, context: ssl.SSLContext) -> Connector:
    return TLSEndpoint(host, port, context)


class _Connection:
    """Reads and writes on either a raw unix socket or a TLS stream."""

    def __init__(
        self,
        sock: socket.socket | None = None,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
    ) -> None:
        self._sock = sock
        self._streams = streams
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, endpoint: Connector) -> _Connection:
        if isinstance(endpoint, UnixEndpoint):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, endpoint.path)
            except BaseException:
                sock.close()
                raise
            return cls(sock=sock)
        streams = await asyncio.open_connection(
            endpoint.host,
            endpoint.port,
            ssl=endpoint.context,
            server_hostname=endpoint.host,
            limit=READ_BUFFER_LIMIT,
        )
        return cls(streams=streams)

    async def send(self, data: bytes) -> None:
        if self._sock is not None:
            await self._loop.sock_sendall(self._sock, data)
        else:
            assert self._streams is not None
            self._streams[1].write(data)
            await self._streams[1].drain()

    async def recv(self, size: int) -> bytes:
        if self._sock is not None:
            return await self._loop.sock_recv(self._sock, size)
        assert self._streams is not None
        return await self._streams[0].read(size)

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            return
        assert self._streams is not None
        writer = self._streams[1]
        writer.close()
        # Closing is all we wanted; a TLS peer that does not say goodbye is fine.
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 2)


class LXDDownload:
    """One streamed answer: `status_code`, `headers`, the body through `iter_raw()`."""

    def __init__(
        self, connection: _Connection, status_code: int, headers: httpx.Headers, pending: bytes
    ) -> None:
        self._connection = connection
        self._pending = pending  # body bytes that came with the headers
        self.status_code = status_code
        self.headers = headers
        self.is_closed = False

    async def iter_raw(self, chunk_size: int, timeout: float) -> AsyncIterator[bytes]:
        """The body, one chunk per read of at most `chunk_size` (what the socket has ready);
        each read waits `timeout` at most."""
        try:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                async for chunk in self._chunked(chunk_size, timeout):
                    yield chunk
                return
            length = self.headers.get("content-length")
            remaining = int(length) if length is not None else -1
            if self._pending:
                first = self._pending if remaining < 0 else self._pending[:remaining]
                self._pending = b""
                if remaining > 0:
                    remaining -= len(first)
                yield first
            while remaining != 0:
                size = chunk_size if remaining < 0 else min(chunk_size, remaining)
                async with asyncio.timeout(timeout):
                    data = await self._connection.recv(size)
                if not data:
                    if remaining > 0:
                        raise LXDBadGateway(f"LXD broke off a download ({remaining} bytes short)")
                    return
                if remaining > 0:
                    remaining -= len(data)
                yield data
        except TimeoutError as exc:
            raise LXDTimeout("LXD stopped sending in the middle of a download") from exc
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise LXDBadGateway(f"LXD broke off a download ({type(exc).__name__})") from exc

    async def _read_some(self, size: int, timeout: float) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        async with asyncio.timeout(timeout):
            return await self._connection.recv(size)

    async def _read_line(self, timeout: float) -> bytes:
        while b"\r\n" not in self._pending:
            async with asyncio.timeout(timeout):
                data = await self._connection.recv(65536)
            if not data:
                raise asyncio.IncompleteReadError(self._pending, None)
            self._pending += data
            if len(self._pending) > MAX_HEAD:
                raise ValueError("chunk header too long")
        line, _, self._pending = self._pending.partition(b"\r\n")
        return line

    async def _chunked(self, chunk_size: int, timeout: float) -> AsyncIterator[bytes]:
        while True:
            size = int((await self._read_line(timeout)).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await self._read_line(timeout):
                    pass  # trailers, up to the empty line
                return
            while size > 0:
                data = await self._read_some(min(chunk_size, size), timeout)
                if not data:
                    raise asyncio.IncompleteReadError(b"", size)
                size -= len(data)
                yield data
            if await self._read_line(timeout):
                raise ValueError("chunk not followed by CRLF")

    async def read_error_body(self, timeout: float) -> bytes:
        """The (small) body of an error answer, bounded."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.iter_raw(64 * 1024, timeout):
            parts.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
        return b"".join(parts)[:MAX_ERROR_BODY]

    async def aclose(self) -> None:
        if not self.is_closed:
            self.is_closed = True
            await self._connection.close()


async def open_download(
    connect: Connector, *, host: str, target: str, timeout: float
) -> LXDDownload:
    """Connect, send `GET target`, read the status line and headers (within `timeout`)."""
    try:
        async with asyncio.timeout(timeout):
            connection = await _Connection.open(connect)
    except TimeoutError as exc:
        raise LXDTimeout("LXD did not accept a connection in time") from exc
    except OSError as exc:
        raise LXDUnavailable(f"LXD is unreachable: {exc}"[:300]) from exc
    try:
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lxd-api\r\n"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        )
        async with asyncio.timeout(timeout):
            await connection.send(request.encode("ascii"))
            head = b""
            while b"\r\n\r\n" not in head:
                data = await connection.recv(65536)
                if not data:
                    raise asyncio.IncompleteReadError(head, None)
                head += data
                if len(head) > MAX_HEAD and b"\r\n\r\n" not in head:
                    raise ValueError("oversized response headers")
        raw_head, _, pending = head.partition(b"\r\n\r\n")
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x reply")
        status = int(rest.split(" ", 1)[0])
        headers = httpx.Headers(
            [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
        )
    except TimeoutError as exc:
        await connection.close()
        raise LXDTimeout(f"LXD did not answer GET {target.split('?', 1)[0]} in time") from exc
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        await connection.close()
        kind = type(exc).__name__
        raise LXDBadGateway(f"LXD sent a reply this API cannot read ({kind})") from exc
    except BaseException:
        await connection.close()
        raise
    return LXDDownload(connection, status, headers, pending)
