"""Backups: `/api/v1/instances/{name}/backups` (viewer reads; operator creates, deletes,
exports). The export streams LXD's tarball to the client chunk by chunk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.api.accepted import operation_answer
from app.api.deps import ListParams, LXDDep, OperatorUser, ProjectDep, ViewerRead, WaitParams
from app.api.params import InstanceName
from app.api.responses import (
    ASYNC_RESPONSES,
    DownloadResponse,
    error_responses,
    lxd_answer,
)
from app.core.config import API_V1_PREFIX
from app.schemas.backups import BackupCreate, BackupPublic
from app.schemas.common import NAME_PATTERN, OperationRef, Page
from app.services import backups as service
from app.services.backups import archive_extension

router = APIRouter(prefix=API_V1_PREFIX + "/instances/{name}/backups", tags=["backups"])

BackupName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="Backup name", examples=["weekly"])
]


@router.get(
    "",
    response_model=Page[BackupPublic | str],
    summary="List an instance's backups",
    description="`GET /1.0/instances/{name}/backups` with `recursion=1` (`expand=false`: names "
    "only), sorted by name and paged here with `limit`/`offset`. `filter` is passed on, but LXD "
    "5.0 filters only instances, images and volumes: it returns all backups. Role: viewer. "
    "Synchronous.",
    responses=error_responses(404),
)
async def list_backups(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> JSONResponse:
    body = await service.list_backups(
        lxd,
        name=name,
        project=project,
        query=params,
    )
    return lxd_answer(body)


@router.post(
    "",
    status_code=202,
    response_model=OperationRef,
    summary="Create a backup",
    description="`POST /1.0/instances/{name}/backups` `{name, expires_at, instance_only, "
    "optimized_storage, compression_algorithm}` (async: LXD writes the tarball on the server). "
    "A taken name is a 409 before anything starts. 202 with the operation reference, or with "
    "`wait=true` the finished operation. Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404, 409)},
)
async def create_backup(
    name: InstanceName,
    body: BackupCreate,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.create_backup(
        lxd, name=name, project=project, body=body.model_dump(mode="json", exclude_none=True)
    )
    return await operation_answer(response, wait)


@router.get(
    "/{backup}",
    response_model=BackupPublic,
    summary="Get a backup",
    description="`GET /1.0/instances/{name}/backups/{backup}`. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_backup(
    name: InstanceName, backup: BackupName, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> JSONResponse:
    return lxd_answer(await service.get_backup(lxd, name=name, backup=backup, project=project))


@router.delete(
    "/{backup}",
    status_code=202,
    response_model=OperationRef,
    summary="Delete a backup",
    description="`DELETE /1.0/instances/{name}/backups/{backup}` (async). Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(404)},
)
async def delete_backup(
    name: InstanceName,
    backup: BackupName,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.delete_backup(lxd, name=name, backup=backup, project=project)
    return await operation_answer(response, wait)


@router.get(
    "/{backup}/export",
    response_class=StreamingResponse,
    summary="Download a backup",
    description="`GET /1.0/instances/{name}/backups/{backup}/export`, streamed through as LXD "
    "sends it: constant memory, `Content-Length` from LXD, `Content-Disposition: attachment; "
    'filename="<instance>-<backup>.tar.gz"` (the extension follows the compression found in '
    "the first bytes). A client that goes away closes the stream from LXD. Role: operator.",
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            "description": "The backup tarball",
        },
        **error_responses(404),
    },
)
async def export_backup(
    name: InstanceName, backup: BackupName, lxd: LXDDep, project: ProjectDep, user: OperatorUser
) -> Response:
    download = await service.open_export(lxd, name=name, backup=backup, project=project)
    filename = f"{name}-{backup}.{archive_extension(download.first)}"
    return DownloadResponse(
        download,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
