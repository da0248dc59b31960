"""User administration: `/api/v1/users` (admin). New users: `POST /api/v1/auth/register`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AdminUser, LXDDep, PageLimit, PageOffset, SessionDep
from app.api.responses import error_responses
from app.auth import service
from app.core.config import API_V1_PREFIX
from app.core.security import USERNAME_PATTERN, Role
from app.schemas.common import PROJECT_PATTERN, Page
from app.schemas.users import ProjectRoleSet, UserPublic, UserUpdate
from app.services.listing import ensure_project

router = APIRouter(prefix=API_V1_PREFIX + "/users", tags=["users"])

UsernamePath = Annotated[
    str, Path(pattern=USERNAME_PATTERN, description="Username (any case)", examples=["alice"])
]
ProjectPath = Annotated[
    str, Path(pattern=PROJECT_PATTERN, description="LXD project name", examples=["tenant-a"])
]


@router.get(
    "",
    response_model=Page[UserPublic],
    summary="List users",
    description="All users, by name, with `?limit=` (1-1000) and `?offset=`. Admin.",
    responses=error_responses(422, lxd=False),
)
async def list_users(
    _: AdminUser,
    session: SessionDep,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> Page[UserPublic]:
    users, total = await service.list_users(session, limit=limit, offset=offset)
    items = [UserPublic.model_validate(user) for user in users]
    return Page[UserPublic](items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{username}",
    response_model=UserPublic,
    summary="Get a user",
    description="One user's name, role, active flag and creation time (never a password "
    "hash). Admin.",
    responses=error_responses(404, 422, lxd=False),
)
async def get_user(username: UsernamePath, _: AdminUser, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(await service.get_user(session, username))


@router.patch(
    "/{username}",
    response_model=UserPublic,
    summary="Change a user's role, active flag or password",
    description="Any of `role`, `is_active`, `password` (a reset). Each change cuts off the "
    "user's current tokens at once. The last active admin cannot be demoted or disabled "
    "(409). Admin.",
    responses=error_responses(404, 409, 422, lxd=False),
)
async def update_user(
    username: UsernamePath, body: UserUpdate, _: AdminUser, session: SessionDep
) -> UserPublic:
    user = await service.update_user(
        session,
        username=username,
        role=body.role,
        is_active=body.is_active,
        password=body.password,
    )
    return UserPublic.model_validate(user)


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user",
    description="The user and their refresh tokens go; their access tokens stop working. "
    "The last active admin cannot be deleted (409). Admin.",
    responses=error_responses(404, 409, 422, lxd=False),
)
async def delete_user(username: UsernamePath, _: AdminUser, session: SessionDep) -> Response:
    await service.delete_user(session, username=username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{username}/projects/{project}",
    response_model=UserPublic,
    summary="Give a user a role in one project",
    description='`{"role": "viewer"|"operator"}`: the user\'s role in that LXD project '
    "(404 if LXD has no such project). A caller's role in a project is the higher of its "
    "global role and this one; with the global role `none` the user sees only its bound "
    "projects. Takes effect at the user's next request (its tokens stay valid). Admin is "
    "global only. Answers the user. Admin.",
    responses=error_responses(404, 422),
)
async def set_project_role(
    username: UsernamePath,
    project: ProjectPath,
    body: ProjectRoleSet,
    lxd: LXDDep,
    _: AdminUser,
    session: SessionDep,
) -> UserPublic:
    await service.get_user(session, username)  # a missing user is a 404 before LXD is asked
    await ensure_project(lxd, project)
    user = await service.set_project_role(
        session, username=username, project=project, role=Role(body.role)
    )
    return UserPublic.model_validate(user)


@router.delete(
    "/{username}/projects/{project}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a user's role in one project",
    description="Takes effect at the user's next request; open WebSocket sessions in that "
    "project end. 404 when the user has no role there. Admin.",
    responses=error_responses(404, 422, lxd=False),
)
async def remove_project_role(
    username: UsernamePath, project: ProjectPath, _: AdminUser, session: SessionDep
) -> Response:
    await service.remove_project_role(session, username=username, project=project)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
