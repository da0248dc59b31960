"""Profiles: `/api/v1/profiles` (viewer reads, admin writes; `?project=`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AdminUser, ListParams, LXDDep, ProjectDep, ViewerRead
from app.api.responses import (
    IfMatch,
    LXDJSONResponse,
    Responses,
    error_responses,
    location,
    lxd_answer,
)
from app.core.config import API_V1_PREFIX
from app.schemas.common import NAME_PATTERN, Page
from app.schemas.profiles import (
    ProfileCreate,
    ProfileInUseBody,
    ProfilePatch,
    ProfilePublic,
    ProfileRename,
    ProfileUpdate,
)
from app.services import profiles as service

router = APIRouter(prefix=API_V1_PREFIX + "/profiles", tags=["profiles"])

ProfileName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="Profile name", examples=["default"])
]

IN_USE_RESPONSES: Responses = {
    409: {
        "model": ProfileInUseBody,
        "description": "Conflict: the profile is in use (the instances in `instances`), or it "
        "is the `default` profile (`code: default_profile_protected`)",
    }
}


@router.get(
    "",
    response_model=Page[ProfilePublic | str],
    summary="List profiles",
    description="`GET /1.0/profiles` (`recursion=1`; `expand=false` lists names), paged here. "
    "A project without `features.profiles` shows the default project's profiles. Role: "
    "viewer. Synchronous.",
    responses=error_responses(404),
)
async def list_profiles(
    lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> LXDJSONResponse:
    body = await service.list_profiles(lxd, project=project, query=params)
    return lxd_answer(body, model=Page[ProfilePublic | str])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfilePublic,
    summary="Create a profile",
    description="`POST /1.0/profiles` (`config` and `devices` passed through), then reads it "
    "back. Answers 201 with the profile, its `Location` and `ETag`; 409 if the name is taken "
    "(LXD 5.0 says 500); 400 for a config key or device LXD refuses. Role: admin (what a "
    "profile holds is the admin's grant). Synchronous.",
    responses=error_responses(400, 404, 409),
)
async def create_profile(
    body: ProfileCreate, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> LXDJSONResponse:
    data, etag = await service.create_profile(lxd, project=project, body=body.model_dump())
    return lxd_answer(
        data,
        model=ProfilePublic,
        etag=etag,
        location=location("profiles", body.name),
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{profile}",
    response_model=ProfilePublic,
    summary="Get a profile",
    description="`GET /1.0/profiles/{name}`; `used_by` lists the instances that use it, and "
    "the `ETag` header is what `If-Match` takes on PUT/PATCH. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_profile(
    profile: ProfileName, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> LXDJSONResponse:
    data, etag = await service.get_profile(lxd, project=project, name=profile)
    return lxd_answer(data, model=ProfilePublic, etag=etag)


@router.put(
    "/{profile}",
    response_model=ProfilePublic,
    summary="Replace a profile's config, devices and description",
    description="`PUT /1.0/profiles/{name}`: config keys and devices left out are removed "
    "(from every instance that uses the profile, at once). `If-Match` is passed on (412 on "
    "mismatch). Answers the profile as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def replace_profile(
    profile: ProfileName,
    body: ProfileUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_profile(
        lxd,
        project=project,
        name=profile,
        body=body.model_dump(),
        replace=True,
        if_match=if_match,
    )
    return lxd_answer(data, model=ProfilePublic, etag=etag)


@router.patch(
    "/{profile}",
    response_model=ProfilePublic,
    summary="Update a profile",
    description="`PATCH /1.0/profiles/{name}`: merges the config keys and devices given (by "
    "name) and the description; to remove a device, PUT the profile without it. `If-Match` "
    "is passed on (412 on mismatch). Answers the profile as it now is. Role: admin. "
    "Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def update_profile(
    profile: ProfileName,
    body: ProfilePatch,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.update_profile(
        lxd,
        project=project,
        name=profile,
        body=body.model_dump(exclude_none=True),
        replace=False,
        if_match=if_match,
    )
    return lxd_answer(data, model=ProfilePublic, etag=etag)


@router.post(
    "/{profile}/rename",
    response_model=ProfilePublic,
    summary="Rename a profile",
    description='`POST /1.0/profiles/{name}` `{"name"}`; answers the profile under its new '
    "name (the instances that use it follow). 409 if the name is taken, or for the `default` "
    "profile (LXD 5.0 says 403). Role: admin. Synchronous.",
    responses=error_responses(404, 409),
)
async def rename_profile(
    profile: ProfileName,
    body: ProfileRename,
    lxd: LXDDep,
    project: ProjectDep,
    user: AdminUser,
) -> LXDJSONResponse:
    data, etag = await service.rename_profile(
        lxd, project=project, name=profile, new_name=body.name
    )
    return lxd_answer(
        data, model=ProfilePublic, etag=etag, location=location("profiles", body.name)
    )


@router.delete(
    "/{profile}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a profile",
    description="`DELETE /1.0/profiles/{name}`. A profile in use is a 409 `in_use` that lists "
    "the instances using it in `instances` (LXD 5.0 says 500); the `default` profile is a 409 "
    "`default_profile_protected` (LXD says 403). Role: admin. Synchronous.",
    responses={**error_responses(404), **IN_USE_RESPONSES},
)
async def delete_profile(
    profile: ProfileName, lxd: LXDDep, project: ProjectDep, user: AdminUser
) -> Response:
    await service.delete_profile(lxd, project=project, name=profile)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
