"""Streamed downloads from LXD (backup exports, log files): `open_download()` starts a
streamed GET and raises LXD's errors before anything is sent on; `Download.chunks()` hands the
body on chunk by chunk, nothing buffered beyond one chunk, and closes the upstream stream when
the response ends, also when the client went away in the middle."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

from app.lxd.client import LXDClient, StreamedResponse


class Download:
    """An open streamed GET to LXD: its headers, `chunks()` to send, `aclose()`."""

    def __init__(
        self,
        stack: AsyncExitStack,
        response: StreamedResponse,
        body: AsyncIterator[bytes],
        first: bytes,
    ) -> None:
        self._stack = stack
        self._body = body
        self.headers = response.headers
        self.first = first

    @property
    def content_length(self) -> str | None:
        return self.headers.get("content-length")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, as LXD sends it; closes the upstream stream when done or abandoned."""
        try:
            if self.first:
                first, self.first = self.first, b""
                yield first
            async for chunk in self._body:
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()


async def open_download(
    lxd: LXDClient,
    path: str,
    *,
    project: str,
    peek: bool = False,
    params: Mapping[str, Any] | None = None,
) -> Download:
    """Start a streamed GET; LXD's errors are raised here, before anything is sent on.
    With `peek`, the first chunk is read already (`Download.first`)."""
    stack = AsyncExitStack()
    try:
        response = await stack.enter_async_context(lxd.stream(path, project=project, params=params))
        # One iterator for the whole body (a response streams only once).
        body = aiter(lxd.iter_bytes(response))
        if isinstance(body, AsyncGenerator):
            stack.push_async_callback(body.aclose)
        first = await anext(body, b"") if peek else b""
    except BaseException:
        await stack.aclose()
        raise
    return Download(stack, response, body, first)
