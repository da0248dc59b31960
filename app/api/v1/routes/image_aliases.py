"""Image aliases: `/api/v1/images/aliases` (viewer reads, admin writes).

LXD allows `/` in alias names (`ubuntu/22.04`); this API puts alias names in URL paths, where a
`/` (or `%2F`) is refused with a 422. Such aliases (made with `lxc`, or by an image server)
show in the list but cannot be read, changed or deleted one by one through this API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AdminUser, ListParams, LXDDep, ProjectDep, ViewerRead
from app.api.responses import LXDJSONResponse, error_responses, lxd_answer
from app.core.config import API_V1_PREFIX
from app.schemas.common import NAME_PATTERN, Page
from app.schemas.images import (
    ImageAliasCreate,
    ImageAliasPublic,
    ImageAliasRename,
    ImageAliasUpdate,
)
from app.services import images as service

router = APIRouter(prefix=API_V1_PREFIX + "/images/aliases", tags=["images"])

AliasPath = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        description="Alias name (no `/`: aliases whose LXD name holds one are list-only here)",
        examples=["alpine"],
    ),
]


@router.get(
    "",
    response_model=Page[ImageAliasPublic | str],
    summary="List image aliases",
    description="`GET /1.0/images/aliases?recursion=1` in `?project=`; `expand=false` lists "
    "names only. Paged here with `limit`/`offset`. Role: viewer. Synchronous.",
    responses=error_responses(400, 404),
)
async def list_aliases(
    lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> LXDJSONResponse:
    body = await service.list_aliases(
        lxd,
        project=project,
        query=params,
    )
    return lxd_answer(body, model=Page[ImageAliasPublic | str])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ImageAliasPublic,
    summary="Create an image alias",
    description="`POST /1.0/images/aliases` `{name, target, description}`; `target` may be a "
    "unique fingerprint prefix. Answers 201 with the alias (full target fingerprint) and its "
    "`Location`; 409 if the name is taken, 404 if the target image is not there. Role: admin. "
    "Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def create_alias(
    body: ImageAliasCreate, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> LXDJSONResponse:
    alias, etag = await service.create_alias(
        lxd, project=project, name=body.name, target=body.target, description=body.description
    )
    return lxd_answer(
        alias,
        model=ImageAliasPublic,
        etag=etag,
        location=f"/api/v1/images/aliases/{body.name}",
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{alias}",
    response_model=ImageAliasPublic,
    summary="Get an image alias",
    description="`GET /1.0/images/aliases/{alias}`. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_alias(
    alias: AliasPath, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> LXDJSONResponse:
    data, etag = await service.get_alias(lxd, project=project, name=alias)
    return lxd_answer(data, model=ImageAliasPublic, etag=etag)


@router.patch(
    "/{alias}",
    response_model=ImageAliasPublic,
    summary="Change an alias's target or description",
    description="Done as `GET` + `PUT /1.0/images/aliases/{alias}` with `If-Match` (LXD 5.0's "
    "PATCH on aliases hangs 20 s, then fails); fields left out keep their value. Answers the "
    "alias as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 409, 412),
)
async def update_alias(
    alias: AliasPath,
    body: ImageAliasUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    data, etag = await service.update_alias(
        lxd, project=project, name=alias, target=body.target, description=body.description
    )
    return lxd_answer(data, model=ImageAliasPublic, etag=etag)


@router.post(
    "/{alias}/rename",
    response_model=ImageAliasPublic,
    summary="Rename an image alias",
    description="Creates the alias under the new name (`POST /1.0/images/aliases`, same target, "
    "description and type), then deletes the old one: LXD 5.0.2's own rename takes 10 s. "
    "Answers 200 with the alias under its new name; 409 if that name is taken. Role: admin. "
    "Synchronous.",
    responses=error_responses(404, 409),
)
async def rename_alias(
    alias: AliasPath,
    body: ImageAliasRename,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    data, etag = await service.rename_alias(lxd, project=project, name=alias, new_name=body.name)
    return lxd_answer(data, model=ImageAliasPublic, etag=etag)


@router.delete(
    "/{alias}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an image alias",
    description="`DELETE /1.0/images/aliases/{alias}` (the image stays). Role: admin. Synchronous.",
    responses=error_responses(404),
)
async def delete_alias(
    alias: AliasPath, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> Response:
    await service.delete_alias(lxd, project=project, name=alias)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
