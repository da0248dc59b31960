"""Shared by the WebSocket routes (exec, console, events): close codes, our socket as the
services' `Peer`, closing politely, and checking the target before anything starts in LXD."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app import audit
from app.core.security import WebSocketAuthError
from app.errors import AppError, LXDBadRequest, LXDConflict, LXDError, LXDNotFound
from app.schemas.common import INSTANCE_NAME_PATTERN, PROJECT_PATTERN
from app.services.terminal import PeerGone

# Close codes beyond API.md's 4401/4403/4404/1011 (documented in the tag description).
CLOSE_NORMAL = 1000
CLOSE_LXD_FAILED = 1011
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
# Over WS_MAX_SESSIONS_PER_USER (app.api.sessions).
CLOSE_TOO_MANY_SESSIONS = 4429


class WebSocketPeer:
    """Our WebSocket as the services' `Peer`: raw frames in, frames out, `PeerGone` when closed."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.gone = False

    async def receive(self) -> bytes | str | None:
        if self.gone:
            return None
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self.gone = True
            return None
        data = message.get("bytes")
        if data is not None:
            return bytes(data)
        return str(message.get("text") or "")

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def send_text(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data})

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.websocket.send(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            self.gone = True
            raise PeerGone from exc


async def close_socket(
    websocket: WebSocket, code: int, reason: str = "", *, timeout: float = 5
) -> None:
    """Close with `code`; a close reason is at most 123 bytes and never holds a secret (LXD
    errors from our client name no URL)."""
    websocket.state.close_code = code
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    if websocket.client_state is WebSocketState.DISCONNECTED:
        return
    reason = reason.encode("utf-8")[:123].decode("utf-8", "ignore")
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), timeout=timeout)


async def refuse_upgrade(websocket: WebSocket, exc: Exception) -> None:
    """The app's handler of `WebSocketAuthError` (a token, role, project or session cap that
    does not admit the socket): close with its code (4401, 4403, 4404, 4429) and audit it."""
    assert isinstance(exc, WebSocketAuthError)
    # Accept first: a close before the accept becomes a bare HTTP 403 at the handshake and the
    # client never sees the 4401/4403 code.
    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept()
    await close_socket(websocket, exc.code, exc.reason)
    audit.record(websocket.app, connection=websocket, status=exc.code, detail=exc.reason)


def closed_with(websocket: WebSocket) -> int | None:
    """The code `close_socket()` closed the socket with, None if it did not."""
    code: int | None = getattr(websocket.state, "close_code", None)
    return code


def close_code_for(exc: AppError) -> int:
    if isinstance(exc, LXDNotFound):
        return CLOSE_NOT_FOUND
    if isinstance(exc, LXDBadRequest | LXDConflict) or not isinstance(exc, LXDError):
        return CLOSE_BAD_REQUEST
    return CLOSE_LXD_FAILED


def target_or_refusal(name: str, project: str | None, default: str) -> tuple[str, str] | str:
    """(name, project) when both are valid, else the reason to refuse them."""
    if not re.fullmatch(INSTANCE_NAME_PATTERN, name):
        return f"invalid instance name {name[:64]!r}"
    project = project or default
    if not re.fullmatch(PROJECT_PATTERN, project):
        return f"invalid project name {project[:64]!r}"
    return name, project
