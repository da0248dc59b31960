"""User administration: `/api/v1/users` (admin). New users: `POST /api/v1/auth/register`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AdminUser, PageLimit, PageOffset, SessionDep
from app.api.responses import error_responses
from app.core.security import USERNAME_PATTERN
from app.schemas.common import Page
from app.schemas.users import UserPublic, UserUpdate
from app.services import auth as service

router = APIRouter(prefix="/users", tags=["users"])

UsernamePath = Annotated[
    str, Path(pattern=USERNAME_PATTERN, description="Username (any case)", examples=["alice"])
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
