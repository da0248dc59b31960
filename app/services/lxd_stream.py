"""Streamed GETs from LXD read straight off a connection of their own (downloads: backup
exports, log files, recorded exec output).

httpx reads a body 64 KiB at a time through h11 and then re-chunks it: for a backup of
hundreds of MB that is a third of what the socket gives (LXD.md §16; `bench/backup_export.py`).
Here a download opens its own connection (the unix socket, or TLS with the client certificate),
sends one `GET` with `Connection: close`, parses the status line and headers, and reads the body
in large reads (Content-Length, chunked, or up to EOF). Closing it closes the connection, which
is how LXD learns that a client went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from app.services.exceptions import LXDBadGateway, LXDTimeout, LXDUnavailable

MAX_HEAD = 64 * 1024
MAX_ERROR_BODY = 1024 * 1024
READ_BUFFER_LIMIT = 1024 * 1024  # the StreamReader pauses the socket past twice this

Connector = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def unix_connector(socket_path: str) -> Connector:
    def connect() -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        return asyncio.open_unix_connection(socket_path, limit=READ_BUFFER_LIMIT)

    return connect


def tls_connector(host: str, port: int, context: ssl.SSLContext) -> Connector:
    def connect() -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        return asyncio.open_connection(
            host, port, ssl=context, server_hostname=host, limit=READ_BUFFER_LIMIT
        )

    return connect


class LXDDownload:
    """One streamed answer: `status_code`, `headers`, the body through `iter_raw()`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status_code: int,
        headers: httpx.Headers,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.status_code = status_code
        self.headers = headers
        self.is_closed = False

    async def iter_raw(self, chunk_size: int, timeout: float) -> AsyncIterator[bytes]:
        """The body, in reads of at most `chunk_size`; each read waits `timeout` at most."""
        try:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                async for chunk in self._chunked(chunk_size, timeout):
                    yield chunk
                return
            length = self.headers.get("content-length")
            remaining = int(length) if length is not None else -1
            while remaining != 0:
                want = chunk_size if remaining < 0 else min(chunk_size, remaining)
                async with asyncio.timeout(timeout):
                    data = await self._reader.read(want)
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

    async def _chunked(self, chunk_size: int, timeout: float) -> AsyncIterator[bytes]:
        reader = self._reader
        while True:
            async with asyncio.timeout(timeout):
                line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                async with asyncio.timeout(timeout):
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                return
            while size > 0:
                async with asyncio.timeout(timeout):
                    data = await reader.read(min(chunk_size, size))
                if not data:
                    raise asyncio.IncompleteReadError(b"", size)
                size -= len(data)
                yield data
            async with asyncio.timeout(timeout):
                await reader.readexactly(2)

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
        if self.is_closed:
            return
        self.is_closed = True
        self._writer.close()
        # Closing is all we wanted; a TLS peer that does not say goodbye is fine.
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self._writer.wait_closed(), 2)


async def open_download(
    connect: Connector, *, host: str, target: str, timeout: float
) -> LXDDownload:
    """Connect, send `GET target`, read the status line and headers (within `timeout`)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await connect()
    except TimeoutError as exc:
        raise LXDTimeout("LXD did not accept a connection in time") from exc
    except OSError as exc:
        raise LXDUnavailable(f"LXD is unreachable: {exc}"[:300]) from exc
    try:
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lxd-api\r\n"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise LXDBadGateway("LXD sent oversized response headers")
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise LXDBadGateway("LXD sent a reply that is not HTTP/1.x")
        status = int(rest.split(" ", 1)[0])
        headers = httpx.Headers(
            [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
        )
    except TimeoutError as exc:
        writer.close()
        raise LXDTimeout(f"LXD did not answer GET {target.split('?', 1)[0]} in time") from exc
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        writer.close()
        raise LXDBadGateway(
            f"LXD sent a reply this API cannot read ({type(exc).__name__})"
        ) from exc
    except BaseException:
        writer.close()
        raise
    return LXDDownload(reader, writer, status, headers)
