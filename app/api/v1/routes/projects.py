"""Projects: `/api/v1/projects` (viewer reads, admin writes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse

from app.api.accepted import operation_answer
from app.api.deps import (
    AdminUser,
    ListParams,
    LoginUser,
    LXDDep,
    PathProjectViewer,
    SessionDep,
    WaitParams,
)
from app.api.responses import (
    ASYNC_RESPONSES,
    IfMatch,
    LXDJSONResponse,
    error_responses,
    lxd_answer,
)
from app.auth import access
from app.core.config import API_V1_PREFIX
from app.db import crud
from app.schemas.common import PROJECT_PATTERN, OperationRef, Page
from app.schemas.projects import (
    ProjectCreate,
    ProjectPatch,
    ProjectPublic,
    ProjectPut,
    ProjectRename,
    ProjectState,
)
from app.services import projects as service

router = APIRouter(prefix=API_V1_PREFIX + "/projects", tags=["projects"])

ProjectPath = Annotated[
    str, Path(pattern=PROJECT_PATTERN, description="Project name", examples=["staging"])
]


@router.get(
    "",
    response_model=Page[ProjectPublic | str],
    summary="List projects",
    description="`GET /1.0/projects` (`recursion=1` unless `expand=false`, which lists names). "
    "Paged here with `limit`/`offset`. Only the projects the caller has a role in (a user "
    "whose global role is `none` sees its bound projects). Role: any logged-in user. "
    "Synchronous.",
    responses=error_responses(400),
)
async def list_projects(lxd: LXDDep, params: ListParams, user: LoginUser) -> LXDJSONResponse:
    def seen(name: str) -> bool:
        return access.sees(user, name)

    keep = None if access.sees_every_project(user) else seen
    body = await service.list_projects(lxd, query=params, keep=keep)
    return lxd_answer(body, model=Page[ProjectPublic | str])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectPublic,
    summary="Create a project",
    description="`POST /1.0/projects`, then reads it back. Features not given are enabled, as "
    "LXD does. Answers 201 with the project, its `Location` and `ETag`; 409 if the name is "
    "taken. Role: admin. Synchronous.",
    responses=error_responses(400, 409),
)
async def create_project(body: ProjectCreate, lxd: LXDDep, user: AdminUser) -> LXDJSONResponse:
    project, etag = await service.create_project(
        lxd, name=body.name, description=body.description, config=body.config
    )
    return lxd_answer(
        project,
        model=ProjectPublic,
        etag=etag,
        location=f"/api/v1/projects/{body.name}",
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{project}",
    response_model=ProjectPublic,
    summary="Get a project",
    description="`GET /1.0/projects/{project}`; the `ETag` header is what `If-Match` takes on "
    "PUT/PATCH. Role: viewer in that project (404 for a project the caller has no role in). "
    "Synchronous.",
    responses=error_responses(404),
)
async def get_project(project: ProjectPath, lxd: LXDDep, _: PathProjectViewer) -> LXDJSONResponse:
    data, etag = await service.get_project(lxd, name=project)
    return lxd_answer(data, model=ProjectPublic, etag=etag)


@router.get(
    "/{project}/state",
    response_model=ProjectState,
    summary="Get a project's resource usage",
    description="`GET /1.0/projects/{project}/state`: usage against each limit (`-1`: none). "
    "Role: viewer in that project. Synchronous.",
    responses=error_responses(404),
)
async def get_project_state(
    project: ProjectPath, lxd: LXDDep, _: PathProjectViewer
) -> LXDJSONResponse:
    state = await service.get_project_state(lxd, name=project)
    return lxd_answer(state, model=ProjectState)


@router.put(
    "/{project}",
    response_model=ProjectPublic,
    summary="Replace a project's description and config",
    description="`PUT /1.0/projects/{project}`: config keys left out are removed (features "
    "included; LXD changes features only on empty projects). `If-Match` is passed on (412 on "
    "mismatch). Answers the project as it now is. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def replace_project(
    project: ProjectPath,
    body: ProjectPut,
    lxd: LXDDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.replace_project(
        lxd, name=project, description=body.description, config=body.config, if_match=if_match
    )
    return lxd_answer(data, model=ProjectPublic, etag=etag)


@router.patch(
    "/{project}",
    response_model=ProjectPublic,
    summary="Update part of a project",
    description="Merges `config` into the project's config (`null` removes a key) and replaces "
    "`description` if given. Done as `GET` + `PUT /1.0/projects/{project}` with `If-Match`, "
    "because LXD 5.0's PATCH replaces the whole config; a concurrent change is retried. With "
    "the client's own `If-Match`, a mismatch is a 412 instead. Role: admin. Synchronous.",
    responses=error_responses(400, 404, 412),
)
async def patch_project(
    project: ProjectPath,
    body: ProjectPatch,
    lxd: LXDDep,
    user: AdminUser,
    if_match: IfMatch = None,
) -> LXDJSONResponse:
    data, etag = await service.patch_project(
        lxd, name=project, description=body.description, config=body.config, if_match=if_match
    )
    return lxd_answer(data, model=ProjectPublic, etag=etag)


@router.post(
    "/{project}/rename",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationRef,
    summary="Rename a project",
    description="`POST /1.0/projects/{project}` `{name}`: an LXD operation (202 + reference; "
    "`?wait=true` answers 200 with the finished operation). Only an empty project can be "
    "renamed (409 otherwise, naming what uses it); the default project never (409); a taken "
    "name is a 409. Users bound to the project keep their role under the new name. Role: "
    "admin. Asynchronous.",
    responses=ASYNC_RESPONSES | error_responses(404, 409),
)
async def rename_project(
    project: ProjectPath,
    body: ProjectRename,
    lxd: LXDDep,
    wait: WaitParams,
    session: SessionDep,
    user: AdminUser,
) -> JSONResponse:
    started = await service.rename_project(lxd, name=project, new_name=body.name)
    # Only an empty project is renamed (checked above): the operation is quick and certain.
    await crud.rename_project_bindings(session, project, body.name)
    await session.commit()
    return await operation_answer(started, wait)


@router.delete(
    "/{project}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a project",
    description="`DELETE /1.0/projects/{project}`. Only an empty project can be deleted (409 "
    "otherwise, naming what uses it); the default project never (409). The users' roles in "
    "it go with it. Role: admin. Synchronous.",
    responses=error_responses(404, 409),
)
async def delete_project(
    project: ProjectPath, lxd: LXDDep, session: SessionDep, user: AdminUser
) -> Response:
    await service.delete_project(lxd, name=project)
    await crud.drop_project_bindings(session, project)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
