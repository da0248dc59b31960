"""`WS /operations/ws`: LXD's event stream, relayed through the shared hub (viewer)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, WebSocket

from app.api.access import ws_wants_all_projects
from app.api.deps import LXDDep, WSViewerUser
from app.api.sessions import ws_sessions
from app.api.websockets import (
    CLOSE_BAD_REQUEST,
    CLOSE_LXD_FAILED,
    CLOSE_NOT_FOUND,
    close_socket,
)
from app.core.config import API_V1_PREFIX
from app.core.security import Role
from app.errors import AppError, LXDNotFound
from app.schemas.common import PROJECT_PATTERN
from app.services.events import ALL_PROJECTS, EventHub, Subscriber, parse_types
from app.services.listing import ensure_project

log = structlog.get_logger(__name__)

router = APIRouter(prefix=API_V1_PREFIX + "/operations", tags=["operations"])

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013
# A cut subscriber's close frame waits behind what it has not read yet; give it this long.
SLOW_CLOSE_TIMEOUT = 30.0


def get_hub(websocket: WebSocket) -> EventHub:
    hub: EventHub = websocket.app.state.event_hub
    return hub


@router.websocket("/ws", name="events_ws")
async def events_ws(
    websocket: WebSocket,
    lxd: LXDDep,
    user: WSViewerUser,
    types: Annotated[str | None, Query(alias="type")] = None,
    project: Annotated[str | None, Query()] = None,
) -> None:
    """See the `operations` tag for the protocol."""
    await websocket.accept()
    every = ws_wants_all_projects(websocket)  # checked as a global viewer at the upgrade
    project = ALL_PROJECTS if every else project or websocket.app.state.settings.DEFAULT_PROJECT
    registry = ws_sessions(websocket)
    scope = None if every else project
    async with registry.session(websocket, user=user, min_role=Role.viewer, project=scope) as held:
        try:
            wanted = parse_types(types)
        except ValueError as exc:
            await close_socket(websocket, CLOSE_BAD_REQUEST, str(exc))
            return
        if not every and not re.fullmatch(PROJECT_PATTERN, project):
            reason = f"invalid project name {project[:64]!r}"
            await close_socket(websocket, CLOSE_BAD_REQUEST, reason)
            return
        hub = get_hub(websocket)
        try:
            if not every:
                await ensure_project(lxd, project)
            async with hub.subscribe(project=project, types=wanted) as subscriber:
                held.opened(f"events: {','.join(wanted)}")
                log.info("events.subscribed", project=project, types=wanted, user=user.username)
                outcome = await _relay(websocket, subscriber)
        except LXDNotFound as exc:
            await close_socket(websocket, CLOSE_NOT_FOUND, exc.detail)
            return
        except AppError as exc:
            log.warning("events.failed", code=exc.code, detail=exc.detail)
            await close_socket(websocket, CLOSE_LXD_FAILED, exc.detail)
            return
        if outcome == "slow":
            log.warning("events.subscriber_cut", project=project, queue=hub.queue_size)
            reason = f"too slow: more than {hub.queue_size} events waiting"
            await close_socket(websocket, CLOSE_TRY_AGAIN_LATER, reason, timeout=SLOW_CLOSE_TIMEOUT)
        elif outcome == "shutdown":
            await close_socket(websocket, CLOSE_GOING_AWAY, "server shutting down")


async def _relay(websocket: WebSocket, subscriber: Subscriber) -> str:
    """Send events until the client leaves ("gone"), falls behind ("slow") or the hub closes
    ("shutdown")."""

    async def send_events() -> str:
        while True:
            text = await subscriber.get()
            if text is None:
                return "shutdown"
            await websocket.send_text(text)

    async def until_disconnect() -> str:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say on this socket
        return "gone"

    async def until_cut() -> str:
        await subscriber.cut.wait()
        return "slow"

    tasks = [asyncio.create_task(c) for c in (send_events(), until_disconnect(), until_cut())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    outcomes: list[Any] = [task.result() if task.exception() is None else "gone" for task in done]
    return "slow" if "slow" in outcomes else outcomes[0]
