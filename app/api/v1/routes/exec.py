"""Exec: `POST /instances/{name}/exec` (recorded output) and `WS /instances/{name}/exec/ws`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, WebSocket
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from app.api.deps import LXDDep, OperatorUser, ProjectDep, WSOperatorUser
from app.api.params import InstanceName
from app.api.responses import ACCEPTED_RESPONSES, error_responses
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
from app.schemas.exec import ExecRequest, ExecResult, ExecStart
from app.services import exec as service
from app.services import instances as instances_service

log = structlog.get_logger(__name__)

router = APIRouter(prefix=API_V1_PREFIX + "/instances", tags=["exec"])

START_FRAME_TIMEOUT = 30.0


# --- POST /instances/{name}/exec -----------------------------------------------------------------
@router.post(
    "/{name}/exec",
    response_model=ExecResult,
    summary="Run a command (non-interactive)",
    description="`POST /1.0/instances/{name}/exec` with `interactive: false` and "
    "`record-output: true`. With `wait` (default): waits up to `timeout` seconds, reads LXD's "
    "recorded stdout/stderr files (`metadata.output`), deletes them and answers 200 "
    "`{return_code, stdout, stderr}`: UTF-8 text (bad bytes replaced) or byte-exact base64 "
    "(`output: base64`). A command LXD cannot start answers 200 with LXD's `return_code` (127: "
    "not found) and its reason in `error`. If the timeout passes first: 202 + operation "
    "reference, and the recorded output is deleted once the command ends. With `wait: false`: "
    "202 + operation reference, output not recorded (the return code is the operation's "
    "`metadata.return`). Each output keeps at most 64 MiB (`truncated`). Role: operator.",
    responses={**ACCEPTED_RESPONSES, **error_responses(400, 404)},
)
async def exec_command(
    name: InstanceName,
    body: ExecRequest,
    lxd: LXDDep,
    project: ProjectDep,
    user: OperatorUser,
) -> Any:
    finished, result = await service.run_command(lxd, name=name, project=project, req=body)
    if not finished:
        return JSONResponse(result, status_code=202)
    return result


# --- WS /instances/{name}/exec/ws ----------------------------------------------------------------
async def _start_frame(websocket: WebSocket) -> ExecStart | str:
    """The client's first frame as `ExecStart`, or the reason it is not one."""
    try:
        async with asyncio.timeout(START_FRAME_TIMEOUT):
            message = await websocket.receive()
    except TimeoutError:
        return "no start frame within 30 s"
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        return "the first frame must be a JSON text frame"
    try:
        return ExecStart.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        if isinstance(exc, ValidationError):
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem.get("loc", ())) or "frame"
            return f"invalid start frame ({where}: {problem.get('msg')})"
        return "the first frame is not JSON"


@router.websocket("/{name}/exec/ws", name="exec_ws")
async def exec_ws(
    websocket: WebSocket,
    name: str,
    lxd: LXDDep,
    user: WSOperatorUser,
    project: Annotated[str | None, Query()] = None,
) -> None:
    """See the `exec` tag for the protocol."""
    await websocket.accept()
    target = target_or_refusal(name, project, websocket.app.state.settings.DEFAULT_PROJECT)
    if isinstance(target, str):
        await close_socket(websocket, CLOSE_BAD_REQUEST, target)
        return
    name, project = target
    registry = ws_sessions(websocket)
    async with registry.session(
        websocket, user=user, min_role=Role.operator, project=project
    ) as held:
        session: service.ExecSession | None = None
        try:
            await instances_service.get_instance(lxd, name=name, project=project)
            start = await _start_frame(websocket)
            if isinstance(start, str):
                await close_socket(websocket, CLOSE_BAD_REQUEST, start)
                return
            session = await service.open_exec(lxd, name=name, project=project, start=start)
            held.opened(shlex.join(start.command), operation_id=session.operation_id)
            log.info("exec.started", instance=name, project=project, user=user.username)
            code = await session.run(WebSocketPeer(websocket))
        except WebSocketDisconnect:
            return
        except AppError as exc:
            log.warning("exec.failed", instance=name, code=exc.code, detail=exc.detail)
            await close_socket(websocket, close_code_for(exc), exc.detail)
            return
        finally:
            if session is not None:
                await session.close()
        if code is None:
            log.info("exec.client_left", instance=name)
            return
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.send_text(json.dumps({"type": "exit", "return_code": code}))
        await close_socket(websocket, CLOSE_NORMAL)
