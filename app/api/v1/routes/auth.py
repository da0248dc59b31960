"""Auth: `/api/v1/auth` (login, token refresh and logout, own account, registration)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from app.api.access import access_claims, oauth2_scheme
from app.api.deps import AdminUser, LoginUser, PasswordLoginUser, SessionDep, SettingsDep
from app.api.limits import LoginRateLimit, RefreshRateLimit
from app.api.responses import LIMITER_DOWN, error_responses
from app.auth import service
from app.core.config import API_V1_PREFIX
from app.core.security import PASSWORD_MAX_LENGTH
from app.schemas.auth import (
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    RefreshRequest,
    TokenPair,
)
from app.schemas.users import UserCreate, UserPublic

router = APIRouter(prefix=API_V1_PREFIX + "/auth", tags=["auth"])


def _pair(pair: service.TokenPair) -> TokenPair:
    return TokenPair(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/login",
    response_model=TokenPair,
    summary="Log in",
    description="Trade a username and password for an access token (short-lived, for "
    "`Authorization: Bearer`) and a refresh token (single use, for `POST /auth/refresh`). "
    "A wrong name and a wrong password get the same 401. Failed attempts are limited per "
    "username at one client address (`RATE_LIMIT_LOGIN`), per client address "
    "(`RATE_LIMIT_LOGIN_IP`) and per username from every address it has not logged in from "
    "in the last 30 days (`RATE_LIMIT_LOGIN_USER`), so failures elsewhere never lock a user "
    "out of its own address; successful logins only count against their own per-address "
    "limit (`RATE_LIMIT_LOGIN_SUCCESS`). Over a limit, a login is refused before the password "
    "is checked, even a right one: 429 with `Retry-After` (seconds). Public.",
    responses={**error_responses(401, 422, 429, protected=False, lxd=False), **LIMITER_DOWN},
)
async def login(
    request: Request,
    body: LoginRequest,
    session: SessionDep,
    settings: SettingsDep,
    limit: LoginRateLimit,
) -> TokenPair:
    request.state.audit_username = body.username  # the audit entry's actor
    async with limit.attempt(body.username):
        pair = await service.login(
            session, settings, username=body.username, password=body.password
        )
    return _pair(pair)


_FORM_MAX_BYTES = 8192
_TOKEN_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string", "maxLength": 64},
                        "password": {
                            "type": "string",
                            "format": "password",
                            "maxLength": PASSWORD_MAX_LENGTH,
                        },
                        "scope": {"type": "string", "default": ""},
                    },
                }
            }
        },
    }
}


async def _read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form, read without python-multipart."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise HTTPException(415, "Send an application/x-www-form-urlencoded form")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _FORM_MAX_BYTES:
            raise HTTPException(413, "Form too large")
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items() if values}


@router.post(
    "/token",
    response_model=TokenPair,
    summary="Log in with a form (OAuth2 password flow, for Swagger's Authorize)",
    description="The same as `POST /auth/login`, with the credentials as an "
    "`application/x-www-form-urlencoded` form (`username`, `password`, optionally "
    "`grant_type=password`). This is what the **Authorize** button of `/docs` calls: enter "
    "your username and password there (leave client id and secret empty) and every request "
    "from the page carries the access token. Same rate limits as login (the same counters). "
    "Public.",
    responses={
        **error_responses(401, 413, 415, 422, 429, protected=False, lxd=False),
        **LIMITER_DOWN,
    },
    openapi_extra=_TOKEN_FORM_SCHEMA,
)
async def token(
    request: Request, session: SessionDep, settings: SettingsDep, limit: LoginRateLimit
) -> TokenPair:
    form = await _read_form(request)
    try:
        credentials = LoginRequest.model_validate(
            {"username": form.get("username", ""), "password": form.get("password", "")}
        )
    except ValueError:
        raise HTTPException(422, "Form fields `username` and `password` are required") from None
    if form.get("grant_type", "password") != "password":
        raise HTTPException(422, "Only grant_type=password is supported")
    request.state.audit_username = credentials.username  # the audit entry's actor
    async with limit.attempt(credentials.username):
        pair = await service.login(
            session, settings, username=credentials.username, password=credentials.password
        )
    return _pair(pair)


@router.post(
    "/refresh",
    response_model=TokenPair,
    summary="Refresh the tokens",
    description="Trade a refresh token for a new pair. The presented token is spent "
    "(rotation); presenting a spent token again revokes every token of that login (reuse "
    "means it was stolen) and gets a 401. Access tokens are refused here. Rate-limited per "
    "client IP (`RATE_LIMIT_REFRESH`). Public.",
    responses=error_responses(401, 422, 429, protected=False, lxd=False),
)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, _: RefreshRateLimit
) -> TokenPair:
    pair = await service.refresh(session, settings, refresh_token=body.refresh_token)
    return _pair(pair)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    description="Revoke the given refresh token and every token rotated from the same login, "
    "and the access token the request carries (its `jti` is refused until it expires). Other "
    "logins of the same user keep working; a password change cuts off everything at once. "
    "Not with an API token (403). Any logged-in user.",
    responses=error_responses(401, 403, 422, protected=False, lxd=False),
)
async def logout(
    request: Request,
    body: LogoutRequest,
    user: PasswordLoginUser,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Response:
    await service.logout(
        session,
        settings,
        user_id=user.id,
        refresh_token=body.refresh_token,
        access=access_claims(request, token),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    response_model=UserPublic,
    summary="Who am I",
    description="The current user, as the database has it now (with an API token: the rights "
    "the token has). Any logged-in user.",
    responses=error_responses(401, protected=False, lxd=False),
)
async def me(user: LoginUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.put(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password",
    description="Needs the current password (400 when wrong; a wrong one counts as a failed "
    "login, and the login limits apply). Every token issued so far, this one included, stops "
    "working: log in again. Not with an API token (403). Any logged-in user.",
    responses={
        **error_responses(400, 401, 403, 422, 429, protected=False, lxd=False),
        **LIMITER_DOWN,
    },
)
async def change_password(
    body: PasswordChange, user: PasswordLoginUser, session: SessionDep, limit: LoginRateLimit
) -> Response:
    async with limit.attempt(user.username):
        await service.change_password(
            session,
            user_id=user.id,
            current_password=body.current_password,
            new_password=body.new_password,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/register",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user",
    description="Create a user with a role (default `viewer`). 409 when the name is taken, "
    "in any case (`Alice` and `alice` are one name). Admin.",
    responses=error_responses(401, 403, 409, 422, protected=False, lxd=False),
)
async def register(body: UserCreate, _: AdminUser, session: SessionDep) -> UserPublic:
    user = await service.register(
        session, username=body.username, password=body.password, role=body.role
    )
    return UserPublic.model_validate(user)
