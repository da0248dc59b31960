"""Instance logs: the log files LXD keeps for an instance, and the console log (viewer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import PlainTextResponse, Response

from app.api.deps import LXDDep, PageLimit, PageOffset, ProjectDep, ViewerRead, ViewerUser
from app.api.params import InstanceName
from app.api.responses import (
    DownloadResponse,
    LXDJSONResponse,
    error_responses,
    lxd_answer,
    text_route_errors,
)
from app.core.config import API_V1_PREFIX
from app.schemas.common import Page
from app.services import instances as service

router = APIRouter(prefix=API_V1_PREFIX + "/instances", tags=["instances"])

LOG_FILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"
LogFile = Annotated[
    str,
    Path(pattern=LOG_FILE_PATTERN, description="Log file name", examples=["lxc.log"]),
]
TEXT = "text/plain; charset=utf-8"
_TEXT_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {"content": {TEXT: {"schema": {"type": "string"}}}, "description": "The text"}
}


@router.get(
    "/{name}/logs",
    response_model=Page[str],
    summary="List an instance's log files",
    description="`GET /1.0/instances/{name}/logs`: the file names (e.g. `lxc.log`, "
    "`lxc.conf`), sorted, paged here with `limit`/`offset`. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def list_logs(
    name: InstanceName,
    lxd: LXDDep,
    project: ProjectDep,
    _: ViewerRead,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> LXDJSONResponse:
    logs = await service.list_logs(lxd, name=name, project=project, limit=limit, offset=offset)
    return lxd_answer(logs, model=Page[str])


@router.get(
    "/{name}/logs/{file}",
    response_class=PlainTextResponse,
    summary="Get one log file",
    description="`GET /1.0/instances/{name}/logs/{file}`, streamed through as text as LXD "
    "sends it (no buffering). A name LXD does not have is a 404. Role: viewer.",
    responses={**_TEXT_RESPONSE, **text_route_errors(404)},
)
async def get_log(
    name: InstanceName, file: LogFile, lxd: LXDDep, project: ProjectDep, user: ViewerUser
) -> Response:
    download = await service.open_log(lxd, name=name, project=project, file=file)
    return DownloadResponse(download, media_type=TEXT)


@router.get(
    "/{name}/console/log",
    response_class=PlainTextResponse,
    summary="Get the console log",
    description="`GET /1.0/instances/{name}/console` (containers): what the instance wrote to "
    "its console, streamed as text. LXD 5.0.2 serves it once per boot and fails later reads "
    "(`open : no such file`): that is answered as an empty log. Role: viewer.",
    responses={**_TEXT_RESPONSE, **text_route_errors(400, 404)},
)
async def get_console_log(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, user: ViewerUser
) -> Response:
    download = await service.open_console_log(lxd, name=name, project=project)
    if download is None:
        return PlainTextResponse("", media_type=TEXT)
    return DownloadResponse(download, media_type=TEXT)
