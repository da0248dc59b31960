"""`WS /instances/{name}/console/ws`: an instance's console (operator)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.api.deps import LXDDep, WSOperatorUser
from app.api.sessions import ws_sessions
from app.api.websockets import (
    CLOSE_BAD_REQUEST,
    CLOSE_NORMAL,
    WebSocketPeer,
    close_code_for,
    close_socket,
    target_or_refusal,
)
from app.core.config import API_V1_PREFIX
from app.core.security import Role
from app.errors import AppError
from app.schemas.exec import MAX_TERMINAL_SIZE
from app.services import console as service
from app.services import instances as instances_service

log = structlog.get_logger(__name__)

router = APIRouter(prefix=API_V1_PREFIX + "/instances", tags=["console"])


def _terminal_size(width: str | None, height: str | None) -> tuple[int, int] | None:
    """(width, height) from the query (default 80x24), None when either is not 1-10000.
    Parsed here, not by FastAPI, so that bad input closes with 4400 after the accept."""
    values = []
    for raw, default in ((width, 80), (height, 24)):
        value = default if raw is None else int(raw) if raw.isdigit() else 0
        if not 1 <= value <= MAX_TERMINAL_SIZE:
            return None
        values.append(value)
    return values[0], values[1]


@router.websocket("/{name}/console/ws", name="console_ws")
async def console_ws(
    websocket: WebSocket,
    name: str,
    lxd: LXDDep,
    user: WSOperatorUser,
    project: Annotated[str | None, Query()] = None,
    width: Annotated[str | None, Query()] = None,
    height: Annotated[str | None, Query()] = None,
) -> None:
    """See the `console` tag for the protocol."""
    await websocket.accept()
    target = target_or_refusal(name, project, websocket.app.state.settings.DEFAULT_PROJECT)
    if isinstance(target, str):
        await close_socket(websocket, CLOSE_BAD_REQUEST, target)
        return
    name, project = target
    size = _terminal_size(width, height)
    if size is None:
        await close_socket(websocket, CLOSE_BAD_REQUEST, "width and height must be 1-10000")
        return
    registry = ws_sessions(websocket)
    async with registry.session(
        websocket, user=user, min_role=Role.operator, project=project
    ) as held:
        session: service.ConsoleSession | None = None
        try:
            await instances_service.get_instance(lxd, name=name, project=project)
            session = await service.open_console(
                lxd, name=name, project=project, width=size[0], height=size[1]
            )
            held.opened(f"console {size[0]}x{size[1]}", operation_id=session.operation_id)
            log.info("console.attached", instance=name, project=project, user=user.username)
            lxd_ended = await session.run(WebSocketPeer(websocket))
        except WebSocketDisconnect:
            return
        except AppError as exc:
            log.warning("console.failed", instance=name, code=exc.code, detail=exc.detail)
            await close_socket(websocket, close_code_for(exc), exc.detail)
            return
        finally:
            if session is not None:
                await session.close()
        log.info("console.detached", instance=name, by="lxd" if lxd_ended else "client")
        if lxd_ended:
            await close_socket(websocket, CLOSE_NORMAL, "the console ended")
