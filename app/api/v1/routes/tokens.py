"""API tokens: `/api/v1/auth/tokens` (any logged-in user, for itself; with a login, not a
token) and `/api/v1/users/{username}/tokens` (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AdminUser, LoginUser, PasswordLoginUser, SessionDep, SettingsDep
from app.api.responses import error_responses
from app.auth import access
from app.auth import tokens as service
from app.core.config import API_V1_PREFIX
from app.core.security import USERNAME_PATTERN, Role
from app.schemas.tokens import TOKEN_ID_PATTERN, TokenCreate, TokenCreated, TokenPublic

router = APIRouter(prefix=API_V1_PREFIX, tags=["auth"])

TokenId = Annotated[str, Path(pattern=TOKEN_ID_PATTERN, examples=["tok_3f2a9c1d0b8e7a65"])]
UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN, examples=["alice"])]


@router.post(
    "/auth/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    summary="Create an API token",
    description="A token for scripts and CI (`Authorization: Bearer lxa_...`, or `?token=` on "
    "a WebSocket): `role` defaults to your own highest and cannot exceed it; `projects` limits "
    "it to those projects (then server-wide routes are out of reach); it expires after "
    "`expires_in_days` (default and at most `API_TOKEN_MAX_DAYS`). What it may do is the "
    "least of its own rights and yours at the time of each request. The secret `token` is in "
    "this answer only: it is stored hashed. Needs a login, not a token (403). Any logged-in "
    "user.",
    responses=error_responses(400, 401, 403, 422, protected=False, lxd=False),
)
async def create_token(
    body: TokenCreate, user: PasswordLoginUser, session: SessionDep, settings: SettingsDep
) -> TokenCreated:
    token, secret = await service.create_token(
        session,
        settings,
        user_id=user.id,
        name=body.name,
        role=body.role,
        projects=body.projects,
        expires_in_days=body.expires_in_days,
    )
    return TokenCreated.model_validate(
        {**TokenPublic.model_validate(token).model_dump(), "token": secret}
    )


@router.get(
    "/auth/tokens",
    response_model=list[TokenPublic],
    summary="List my API tokens",
    description="Your tokens that are not revoked, newest first (never a secret). Any "
    "logged-in user.",
    responses=error_responses(401, protected=False, lxd=False),
)
async def list_tokens(user: LoginUser, session: SessionDep) -> list[TokenPublic]:
    tokens = await service.list_tokens(session, user_id=user.id)
    return [TokenPublic.model_validate(token) for token in tokens]


@router.delete(
    "/auth/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke an API token",
    description="The token stops working at once (401). Yours, or (admin) anyone's; 404 "
    "otherwise. Needs a login, not a token (403). Any logged-in user.",
    responses=error_responses(401, 403, 404, 422, protected=False, lxd=False),
)
async def revoke_token(token_id: TokenId, user: PasswordLoginUser, session: SessionDep) -> Response:
    await service.revoke_token(
        session,
        token_id=token_id,
        user_id=user.id,
        as_admin=access.global_role(user).admits(Role.admin),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/users/{username}/tokens",
    response_model=list[TokenPublic],
    summary="List a user's API tokens",
    description="A user's tokens that are not revoked (never a secret). Admin.",
    responses=error_responses(404, 422, lxd=False),
)
async def list_user_tokens(
    username: UsernamePath, _: AdminUser, session: SessionDep
) -> list[TokenPublic]:
    tokens = await service.list_user_tokens(session, username=username)
    return [TokenPublic.model_validate(token) for token in tokens]
