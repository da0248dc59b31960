"""The console of an instance over WebSocket: LXD's `POST /instances/{n}/console`.

LXD gives two sockets: `0` (terminal bytes both ways) and `control` (resize only). Closing
`control` ends LXD's console operation, so a client that leaves ends the session on LXD's side.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.lxd import LXDClient, lxd_path
from app.schemas.exec import ResizeFrame
from app.services.terminal import (
    Peer,
    PeerGone,
    TerminalSession,
    error_frame,
    parse_control,
    relay_output,
    resize_message,
)


class ConsoleSession(TerminalSession):
    async def kill(self) -> None:
        """End the console on LXD's side: the data socket first, then control.

        LXD 5.0 (until canonical/lxd#18477) ends a console with an unguarded write on the data
        socket, racing its own console->socket copy: if that copy is mid-write (busy console,
        or a reader that lags so LXD's write blocks) when `control` closes, the daemon panics
        ("concurrent write to websocket connection"). Closing the data socket first, with its
        close handshake done, makes LXD's later writes fail cleanly instead. The handshake only
        completes if LXD's pending output is read: our relay tasks stop and a drain reads (and
        drops) it meanwhile, else a paused socket would stall it until the close timeout."""
        await self.stop_tasks()
        terminal = self.sockets["0"]
        drain = asyncio.create_task(_discard(terminal))
        try:
            with contextlib.suppress(Exception):
                await terminal.close()
        finally:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        await super().kill()

    async def run(self, peer: Peer) -> bool:
        """Relay until either side ends: True if LXD ended the console, False if the client
        left (then the console is closed on LXD's side)."""
        inbound = asyncio.create_task(self._inbound(peer))
        outbound = asyncio.create_task(relay_output(self.sockets["0"], peer.send_bytes))
        self.tasks.update([inbound, outbound])
        try:
            done, _ = await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = _exception(task)
                if error is not None and not isinstance(error, PeerGone):
                    raise error
            client_left = any(
                isinstance(_exception(task), PeerGone)
                or (task is inbound and _exception(task) is None and task.result())
                for task in done
            )
            await self.kill()
            return not client_left
        finally:
            await self.close()

    async def _inbound(self, peer: Peer) -> bool:
        """Client frames to LXD; True when the client left, False when LXD did."""
        terminal = self.sockets["0"]
        while True:
            message = await peer.receive()
            if message is None:
                return True
            if isinstance(message, bytes):
                try:
                    await terminal.send(message)
                except ConnectionClosed:
                    return False
                continue
            try:
                frame = parse_control(message)
            except ValueError as exc:
                await peer.send_text(error_frame(str(exc)))
                continue
            if isinstance(frame, ResizeFrame):
                await self.send_control(resize_message(frame.width, frame.height))
            else:
                await peer.send_text(error_frame(f"{frame.type!r} is not available on a console"))


async def _discard(sock: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await sock.recv()


def _exception(task: asyncio.Task[Any]) -> BaseException | None:
    if not task.done() or task.cancelled():
        return None
    return task.exception()


async def open_console(
    lxd: LXDClient, *, name: str, project: str, width: int, height: int
) -> ConsoleSession:
    """Attach to the instance's console and connect its sockets (control first, within 5 s)."""
    body = {"type": "console", "width": width, "height": height}
    response = await lxd.post(
        lxd_path("instances", name, "console"), project=project, json_body=body
    )
    started = response.started()
    sockets = await started.websockets(["control", "0"])
    return ConsoleSession(lxd, started.id, sockets)
