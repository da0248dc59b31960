"""Images: `/api/v1/images` (viewer reads, admin writes), with the alias routes of
`image_aliases` mounted first so that `/images/aliases` never reads as a fingerprint."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from app.api.accepted import operation_answer
from app.api.deps import (
    AdminUser,
    ListParams,
    LXDDep,
    ProjectDep,
    SettingsDep,
    ViewerRead,
    WaitParams,
)
from app.api.params import Fingerprint
from app.api.responses import ASYNC_RESPONSES, LXDJSONResponse, error_responses, lxd_answer
from app.core.config import API_V1_PREFIX
from app.schemas.common import OperationRef, Page
from app.schemas.images import ImageCopy, ImagePublic
from app.services import images as service

router = APIRouter(prefix=API_V1_PREFIX + "/images", tags=["images"])


@router.get(
    "",
    response_model=Page[ImagePublic | str],
    summary="List images",
    description="`GET /1.0/images` in `?project=` (`recursion=1` unless `expand=false`, which "
    "lists fingerprints). `filter` is LXD's (e.g. `properties.os eq Alpine`); paged here with "
    "`limit`/`offset`. Role: viewer. Synchronous.",
    responses=error_responses(400, 404),
)
async def list_images(
    lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> LXDJSONResponse:
    body = await service.list_images(
        lxd,
        project=project,
        query=params,
    )
    return lxd_answer(body, model=Page[ImagePublic | str])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationRef,
    summary="Copy an image from another server",
    description="`POST /1.0/images` with `source: {type: image, mode: pull, server, protocol, "
    "alias|fingerprint, certificate?}`. `remote: ubuntu|images` stands for the well-known "
    "server and protocol of the settings (`IMAGE_REMOTE_<NAME>_URL/_PROTOCOL`), as in "
    "`lxc image copy images:alpine/3.19 local:`. Answers 202 with the operation reference: "
    "its progress (`metadata.download_progress`) shows on `GET /operations/{id}` while it "
    "runs; `?wait=true` answers 200 with the finished operation, or the failure (an "
    "unreachable server: LXD's reason, 502) in the error shape. A local alias that is taken "
    "is a 409 up front. Role: admin. Asynchronous.",
    responses=ASYNC_RESPONSES | error_responses(400, 404, 409),
)
async def copy_image(
    body: ImageCopy,
    lxd: LXDDep,
    project: ProjectDep,
    settings: SettingsDep,
    wait: WaitParams,
    user: AdminUser,
) -> JSONResponse:
    started = await service.copy_image(
        lxd,
        project=project,
        source=body.source.model_dump(),
        remotes=service.image_remotes(settings),
        aliases=body.aliases,
        auto_update=body.auto_update,
        public=body.public,
    )
    return await operation_answer(started, wait)


@router.get(
    "/{fingerprint}",
    response_model=ImagePublic,
    summary="Get an image",
    description="`GET /1.0/images/{fingerprint}`; a unique prefix of the fingerprint works "
    "too (a prefix that matches several images: 409). Role: viewer. Synchronous.",
    responses=error_responses(404, 409),
)
async def get_image(
    fingerprint: Fingerprint, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> LXDJSONResponse:
    image = await service.get_image(lxd, project=project, fingerprint=fingerprint)
    return lxd_answer(image, model=ImagePublic)


@router.delete(
    "/{fingerprint}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationRef,
    summary="Delete an image",
    description="Resolves `{fingerprint}` (or a unique prefix) to one image, then `DELETE "
    "/1.0/images/<full fingerprint>`: an LXD operation (202 + reference; `?wait=true` answers "
    "200 with the finished operation). Its aliases go with it. Role: admin. Asynchronous.",
    responses=ASYNC_RESPONSES | error_responses(404, 409),
)
async def delete_image(
    fingerprint: Fingerprint, lxd: LXDDep, project: ProjectDep, wait: WaitParams, user: AdminUser
) -> JSONResponse:
    started = await service.delete_image(lxd, project=project, fingerprint=fingerprint)
    return await operation_answer(started, wait)
