"""Custom storage volumes: `/api/v1/storage/pools/{pool}/volumes` (viewer reads, admin writes,
operator attaches and detaches).

LXD path: `/1.0/storage-pools/{pool}/volumes/custom/{volume}`; all of these take `?project=`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from app.api.deps import (
    AdminUser,
    ListParams,
    LXDDep,
    OperatorUser,
    ProjectDep,
    SettingsDep,
    ViewerRead,
)
from app.api.params import PoolName
from app.api.responses import (
    POLICY_RESPONSES,
    IfMatch,
    LXDJSONResponse,
    error_responses,
    location,
    lxd_answer,
)
from app.auth import policy_checks as policy
from app.core.config import API_V1_PREFIX
from app.schemas.common import NAME_PATTERN, Page
from app.schemas.storage import (
    DetachBody,
    DeviceAttachment,
    RenameBody,
    VolumeAttach,
    VolumeCreate,
    VolumePatch,
    VolumePublic,
    VolumeResize,
    VolumeUpdate,
)
from app.services import storage as service

router = APIRouter(prefix=API_V1_PREFIX + "/storage/pools/{pool}/volumes", tags=["storage"])

VolumeName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="Custom volume name", examples=["data1"])
]


@router.get(
    "",
    response_model=Page[VolumePublic | str],
    summary="List custom volumes of a pool",
    description="`GET /1.0/storage-pools/{pool}/volumes/custom` (`recursion=1`; "
    "`expand=false` lists names; `filter` passed through), paged here. Instance and image "
    "volumes are not listed. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def list_volumes(
    pool: PoolName, lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> LXDJSONResponse:
    body = await service.list_volumes(
        lxd,
        project=project,
        pool=pool,
        query=params,
    )
    return lxd_answer(body, model=Page[VolumePublic | str])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VolumePublic,
    summary="Create a custom volume",
    description="`POST /1.0/storage-pools/{pool}/volumes/custom` (`type: custom`, "
    "`content_type` filesystem or block), then reads it back. `config.size` is checked before "
    "LXD sees it. Answers 201 with the volume and its `Location`; 409 if the name is taken. "
    "Role: admin. Synchronous (waits if LXD makes it an operation).",
    responses=error_responses(400, 404, 409),
)
async def create_volume(
    pool: PoolName,
    body: VolumeCreate,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    volume = await service.create_volume(lxd, project=project, pool=pool, body=body.model_dump())
    return lxd_answer(
        volume,
        model=VolumePublic,
        location=location("storage", "pools", pool, "volumes", body.name),
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{volume}",
    response_model=VolumePublic,
    summary="Get a custom volume",
    description="`GET /1.0/storage-pools/{pool}/volumes/custom/{volume}`; the `ETag` header is "
    "what `If-Match` takes on PUT/PATCH. `used_by` lists the instances and profiles using it. "
    "Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_volume(
    pool: PoolName,
    volume: VolumeName,
    lxd: LXDDep,
    project: ProjectDep,
    _: ViewerRead,
) -> LXDJSONResponse:
    data, etag = await service.get_volume(lxd, project=project, pool=pool, volume=volume)
    return lxd_answer(data, model=VolumePublic, etag=etag)


@router.put(
    "/{volume}",
    response_model=VolumePublic,
    summary="Replace a custom volume's config and description",
    description="`PUT /1.0/storage-pools/{pool}/volumes/custom/{volume}`: config keys left out "
    "are removed. `If-Match` is passed on (412 on mismatch). Answers the volume as it now is. "
    "Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def replace_volume(
    pool: PoolName,
    volume: VolumeName,
    body: VolumeUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_volume(
        lxd,
        project=project,
        pool=pool,
        volume=volume,
        body=body.model_dump(),
        replace=True,
        if_match=if_match,
    )
    return lxd_answer(data, model=VolumePublic, etag=etag)


@router.patch(
    "/{volume}",
    response_model=VolumePublic,
    summary="Update a custom volume",
    description="`PATCH /1.0/storage-pools/{pool}/volumes/custom/{volume}`: merges the config "
    "keys given and the description. `If-Match` is passed on (412 on mismatch). Answers the "
    "volume as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def update_volume(
    pool: PoolName,
    volume: VolumeName,
    body: VolumePatch,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_volume(
        lxd,
        project=project,
        pool=pool,
        volume=volume,
        body=body.model_dump(exclude_unset=True),
        replace=False,
        if_match=if_match,
    )
    return lxd_answer(data, model=VolumePublic, etag=etag)


@router.delete(
    "/{volume}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a custom volume",
    description="`DELETE /1.0/storage-pools/{pool}/volumes/custom/{volume}`. A volume in use is "
    "a 409 that names its users (LXD 5.0 says 400 without naming them): detach it first. "
    "Role: admin. Synchronous.",
    responses=error_responses(404, 409),
)
async def delete_volume(
    pool: PoolName, volume: VolumeName, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> Response:
    await service.delete_volume(lxd, project=project, pool=pool, volume=volume)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{volume}/rename",
    response_model=VolumePublic,
    summary="Rename a custom volume",
    description='`POST /1.0/storage-pools/{pool}/volumes/custom/{volume}` `{"name"}`; answers '
    "the volume under its new name. 409 if the name is taken or the volume is in use by a "
    "running instance. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def rename_volume(
    pool: PoolName,
    volume: VolumeName,
    body: RenameBody,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    data = await service.rename_volume(
        lxd, project=project, pool=pool, volume=volume, new_name=body.name
    )
    return lxd_answer(
        data,
        model=VolumePublic,
        location=location("storage", "pools", pool, "volumes", body.name),
    )


@router.post(
    "/{volume}/resize",
    response_model=VolumePublic,
    summary="Resize a custom volume",
    description="`PATCH /1.0/storage-pools/{pool}/volumes/custom/{volume}` "
    '`{"config": {"size"}}`. The size is an integer and a unit (B, kB, MB, GB, TB, KiB, '
    "MiB, GiB, TiB...), checked here (LXD 5.0 answers a bad one with a 500); what LXD still "
    "refuses (e.g. shrinking a block volume) is a 400. Role: admin. Synchronous.",
    responses=error_responses(400, 404),
)
async def resize_volume(
    pool: PoolName,
    volume: VolumeName,
    body: VolumeResize,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    resized = await service.resize_volume(
        lxd, project=project, pool=pool, volume=volume, size=body.size
    )
    return lxd_answer(resized, model=VolumePublic)


@router.post(
    "/{volume}/attach",
    response_model=DeviceAttachment,
    summary="Attach a custom volume to an instance",
    description="Adds a `disk` device `{pool, source, path}` to the instance: reads it with its "
    "ETag, writes it back with `PUT /1.0/instances/{name}` + `If-Match` and waits for LXD's "
    "operation, retrying on concurrent changes. The device is named `device`, else after the "
    "volume (made unique). 409 if the volume is already attached or the path or device name is "
    "taken; 404 for an unknown volume or instance. Role: operator, held to the operator "
    "policy (a pool-backed disk is allowed). Answers when done.",
    responses={**error_responses(400, 404, 409), **POLICY_RESPONSES},
)
async def attach_volume(
    pool: PoolName,
    volume: VolumeName,
    body: VolumeAttach,
    lxd: LXDDep,
    project: ProjectDep,
    user: OperatorUser,
    settings: SettingsDep,
) -> dict[str, Any]:
    guard = await policy.device_guard(lxd, settings=settings, user=user, project=project)
    device, config = await service.attach_volume(
        lxd,
        project=project,
        pool=pool,
        volume=volume,
        instance=body.instance,
        path=body.path,
        device=body.device,
        guard=guard,
    )
    return {"instance": body.instance, "device": device, "config": config}


@router.post(
    "/{volume}/detach",
    response_model=DeviceAttachment,
    summary="Detach a custom volume from an instance",
    description="Removes the instance's disk device for this volume (the one named `device`, "
    "else the one found by pool and volume), with the same safe read/`If-Match`/retry edit as "
    "attach. Data on the volume is kept. 404 when the volume is not attached; 400 when the "
    "device comes from a profile. Answers the device that was removed. Role: operator. "
    "Answers when done.",
    responses=error_responses(400, 404, 409),
)
async def detach_volume(
    pool: PoolName,
    volume: VolumeName,
    body: DetachBody,
    lxd: LXDDep,
    project: ProjectDep,
    user: OperatorUser,
) -> dict[str, Any]:
    device, config = await service.detach_volume(
        lxd, project=project, pool=pool, volume=volume, instance=body.instance, device=body.device
    )
    return {"instance": body.instance, "device": device, "config": config}
