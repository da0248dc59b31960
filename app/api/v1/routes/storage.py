"""Storage pools: `/api/v1/storage/pools` (viewer reads, admin writes).

Custom volumes live in `storage_volumes.py` under the same prefix.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.deps import AdminUser, GlobalViewerRead, ListParams, LXDDep, ProjectDep
from app.api.params import PoolName
from app.api.responses import IfMatch, LXDJSONResponse, error_responses, location, lxd_answer
from app.core.config import API_V1_PREFIX
from app.schemas.common import Page
from app.schemas.storage import PoolCreate, PoolPatch, PoolPublic, PoolUpdate
from app.services import storage as service

router = APIRouter(prefix=API_V1_PREFIX + "/storage/pools", tags=["storage"])


@router.get(
    "",
    response_model=Page[PoolPublic | str],
    summary="List storage pools",
    description="`GET /1.0/storage-pools` (`recursion=1`; `expand=false` lists names), paged "
    "here. Pools are global in LXD; an unknown `project` is still a 404. Role: viewer. "
    "Synchronous.",
    responses=error_responses(404),
)
async def list_pools(
    lxd: LXDDep, project: ProjectDep, params: ListParams, _: GlobalViewerRead
) -> LXDJSONResponse:
    body = await service.list_pools(
        lxd,
        project=project,
        query=params,
    )
    return lxd_answer(body, model=Page[PoolPublic | str])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PoolPublic,
    summary="Create a storage pool",
    description="`POST /1.0/storage-pools` with the driver and its config, then reads the pool "
    "back. Answers 201 with the pool and its `Location`; 409 if the name is taken; 400 when "
    "LXD refuses the driver or its config (e.g. a `source` that does not exist). Role: admin. "
    "Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def create_pool(
    body: PoolCreate, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> LXDJSONResponse:
    pool = await service.create_pool(lxd, project=project, body=body.model_dump())
    return lxd_answer(
        pool,
        model=PoolPublic,
        location=location("storage", "pools", body.name),
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{pool}",
    response_model=PoolPublic,
    summary="Get a storage pool",
    description="`GET /1.0/storage-pools/{pool}`; LXD's `ETag` header is passed on when LXD "
    "sends one (LXD 5.0 does not for pools). Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_pool(
    pool: PoolName, lxd: LXDDep, project: ProjectDep, _: GlobalViewerRead
) -> LXDJSONResponse:
    data, etag = await service.get_pool(lxd, project=project, pool=pool)
    return lxd_answer(data, model=PoolPublic, etag=etag)


@router.put(
    "/{pool}",
    response_model=PoolPublic,
    summary="Replace a storage pool's config and description",
    description="`PUT /1.0/storage-pools/{pool}`: config keys left out are removed (keep "
    "`source`: LXD refuses to change it). `If-Match` is passed on (412 on mismatch). Answers "
    "the pool as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def replace_pool(
    pool: PoolName,
    body: PoolUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_pool(
        lxd, project=project, pool=pool, body=body.model_dump(), replace=True, if_match=if_match
    )
    return lxd_answer(data, model=PoolPublic, etag=etag)


@router.patch(
    "/{pool}",
    response_model=PoolPublic,
    summary="Update a storage pool",
    description="`PATCH /1.0/storage-pools/{pool}`: merges the config keys given (an empty "
    "value unsets one) and the description. `If-Match` is passed on (412 on mismatch). "
    "Answers the pool as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def update_pool(
    pool: PoolName,
    body: PoolPatch,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_pool(
        lxd,
        project=project,
        pool=pool,
        body=body.model_dump(exclude_unset=True),
        replace=False,
        if_match=if_match,
    )
    return lxd_answer(data, model=PoolPublic, etag=etag)


@router.delete(
    "/{pool}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a storage pool",
    description="`DELETE /1.0/storage-pools/{pool}`. A pool still in use (volumes, profiles) "
    "is a 409 that names its users (LXD 5.0 says 400). Role: admin. Synchronous.",
    responses=error_responses(404, 409),
)
async def delete_pool(
    pool: PoolName, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> Response:
    await service.delete_pool(lxd, project=project, pool=pool)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
