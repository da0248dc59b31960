"""Terminal plumbing shared by exec and console sessions over WebSocket.

A session relays between a client (`Peer`, whatever socket the route has) and the websockets
LXD opened for one operation: one task per direction, data as binary frames (LXD's output
batched by `relay_output`), the client's JSON control frames (`parse_control`) translated to
LXD's control messages (`resize_message`), and `error_frame` for what the client got wrong.
`TerminalSession` holds LXD's side: the operation's sockets and the relay tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.lxd import LXDClient, close_sockets
from app.schemas.exec import ControlFrame

# Frames LXD already delivered are merged into one client frame of at most this size.
MAX_COALESCED = 1024 * 1024
# A frame this big means bulk output (a PTY gives 4095-byte reads, a pipe up to 64 KiB): wait
# this long for more before sending, so that the relay handles batches, not LXD's small frames.
# Typing and prompts (small frames) go out at once.
BULK_FRAME = 4000
BULK_WAIT = 0.002

_CONTROL = TypeAdapter(ControlFrame)


class PeerGone(Exception):
    """The client's socket is closed: nothing more can be sent to it."""


class Peer(Protocol):
    """The client side of a session, as the route's WebSocket provides it."""

    async def receive(self) -> bytes | str | None:
        """The next frame, or None once the client went away."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_text(self, data: str) -> None: ...


def resize_message(width: int, height: int) -> str:
    """LXD's control message for a terminal size (LXD wants the numbers as strings)."""
    args = {"width": str(width), "height": str(height)}
    return json.dumps({"command": "window-resize", "args": args})


def parse_control(text: str) -> ControlFrame:
    """A client's control frame; ValueError with a short reason when it is not one."""
    try:
        return _CONTROL.validate_json(text)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem.get("loc", ())) or "frame"
        raise ValueError(f"invalid control frame ({where}: {problem.get('msg')})") from None


def error_frame(detail: str) -> str:
    return json.dumps({"type": "error", "detail": detail})


async def relay_output(sock: ClientConnection, send: Callable[[bytes], Awaitable[None]]) -> None:
    """Copy LXD's binary frames to `send` until LXD's empty-frame barrier (or its close).

    Bulk output is sent in batches: after a big frame the relay waits a moment and merges
    every frame LXD delivered meanwhile into one. Fewer, bigger frames cost the relay (and
    the client) far less than LXD's 4-64 KiB ones, and leave LXD the CPU it needs.
    """
    # websockets' frame queue tells whether the next recv() would return at once.
    pending = getattr(getattr(sock, "recv_messages", None), "frames", None)
    while True:
        try:
            message = await sock.recv()
        except ConnectionClosed:
            return
        if isinstance(message, str):
            return
        if pending is None or (not pending and len(message) < BULK_FRAME):
            await send(message)
            continue
        if not pending:
            await asyncio.sleep(BULK_WAIT)
        parts = [message]
        size = len(message)
        ended = False
        while pending and size < MAX_COALESCED:
            try:
                more = await sock.recv()
            except ConnectionClosed:
                ended = True
                break
            if isinstance(more, str):
                ended = True
                break
            parts.append(more)
            size += len(more)
        await send(b"".join(parts) if len(parts) > 1 else message)
        if ended:
            return


@dataclass
class TerminalSession:
    """The LXD side of an exec or console operation: its sockets, by LXD's names."""

    lxd: LXDClient
    operation_id: str
    sockets: dict[str, ClientConnection]
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def control(self) -> ClientConnection:
        return self.sockets["control"]

    async def send_control(self, message: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.control.send(message)

    async def kill(self) -> None:
        """End the command or console on the LXD side and release every socket and task."""
        with contextlib.suppress(Exception):
            await self.control.close()
        await self.close()

    async def stop_tasks(self) -> None:
        """Cancel the relay tasks and wait until they are gone (the sockets stay open)."""
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def close(self) -> None:
        await self.stop_tasks()
        await close_sockets(self.sockets.values())
