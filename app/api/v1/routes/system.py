"""System: `/api/v1/system` (viewer): facts about the LXD server and the connection to it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import GlobalViewerRead, LXDDep
from app.api.health import LXDHealth, lxd_health
from app.api.responses import error_responses
from app.core.config import API_V1_PREFIX
from app.schemas.system import SystemInfo
from app.services import system as system_service

router = APIRouter(prefix=API_V1_PREFIX + "/system", tags=["system"])


@router.get(
    "/info",
    response_model=SystemInfo,
    summary="LXD server facts",
    description="From LXD's `GET /1.0`: API and server versions, the number of API "
    "extensions, storage and kernel facts, OS, architectures. Only these fields are passed "
    "on: never LXD's certificate, keys, addresses or server config. Viewer.",
    responses=error_responses(),
)
async def system_info(_: GlobalViewerRead, lxd: LXDDep) -> SystemInfo:
    server = await system_service.server_info(lxd)
    return SystemInfo.from_lxd(server, connection_mode=str(lxd.mode))


@router.get(
    "/health",
    response_model=LXDHealth,
    summary="LXD connection health",
    description="The LXD part of `GET /health`: 200 when LXD answers, 503 with the reason "
    "when it does not. Viewer.",
    responses={
        **error_responses(lxd=False),
        503: {"model": LXDHealth, "description": "LXD is down"},
    },
)
async def system_health(_: GlobalViewerRead, lxd: LXDDep) -> JSONResponse:
    state = await lxd_health(lxd)
    return JSONResponse(
        state.model_dump(exclude_none=True), status_code=200 if state.status == "ok" else 503
    )
