"""Who is asking, and may they: the current user and the role every route declares.

The dependency classes behind the role aliases of `app.api.deps`; who the caller is and what
it may do is decided in `app.auth` (`current.load()`, `access.require()`).

Two kinds of route (API.md, Part 2, "Per-project roles"):

* project-scoped (everything that takes `?project=`, WebSockets included): the caller's role in
  the request's project, the higher of its global role and its binding there. A project in
  which the caller has no role is answered like one that does not exist (404, close 4404).
  `ViewerUser`, `OperatorUser`, `ViewerRead`, `WSViewerUser`, `WSOperatorUser`.
* server-wide (storage pools, system, users, project CRUD, image copy and delete): the global
  role. `LoginUser` (any logged-in user, global `none` included), `GlobalViewerUser`,
  `GlobalViewerRead`, `AdminUser` (admin is global only).

Every requirement carries `min_role` and `scope`: the role-table test reads both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Annotated

from fastapi import Depends, Path, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from app.api.params import get_project
from app.api.websockets import CLOSE_NOT_FOUND
from app.auth import current
from app.auth.access import Scope, require
from app.auth.errors import AuthenticationError, PermissionDeniedError
from app.core.config import Settings
from app.core.security import (
    WS_CLOSE_FORBIDDEN,
    WS_CLOSE_UNAUTHORIZED,
    Role,
    TokenClaims,
    WebSocketAuthError,
)
from app.db.models import User
from app.errors import LXDNotFound
from app.schemas.common import PROJECT_PATTERN

# Swagger's "Authorize" button: the OAuth2 password flow posts a form to /auth/token and sends
# the access token it gets back as `Authorization: Bearer ...`.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="Log in with username and password (the client id and secret stay empty), "
    "or send `Authorization: Bearer <access token>` from `POST /api/v1/auth/login`.",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a request runs as, for the audit log: set on `connection.state.actor` as soon as the
    caller is known (refused callers too, once their token was read)."""

    user_id: int
    username: str
    token_id: str | None = None  # an API token's id; None for a login (JWT)


def set_actor(connection: HTTPConnection, user: User, token_id: str | None = None) -> None:
    connection.state.actor = Actor(user.id, user.username, token_id)


# Swagger's second way in: paste an API token (`lxa_...`) or an access token. Both schemes read
# the same `Authorization: Bearer` header; this one only tells the docs.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="An API token (`lxa_...`, from `POST /api/v1/auth/tokens`) or an access token.",
)
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def access_claims(connection: HTTPConnection, token: str | None) -> TokenClaims:
    """The claims of a valid access token (signature, expiry, type); 401 otherwise."""
    return current.access_claims(connection.app.state.settings, token)


async def authenticate(connection: HTTPConnection, token: str | None) -> User:
    """The user behind `token` as it may act (`app.auth.current.load()`), recorded as the
    request's actor."""
    credential = current.credential(connection.app.state.settings, token)
    caller = await current.load(connection.app.state.db_engine, credential)
    assert caller.user is not None
    set_actor(connection, caller.user, caller.token_id)
    return caller.user


def via_api_token(connection: HTTPConnection) -> bool:
    actor = getattr(connection.state, "actor", None)
    return actor is not None and actor.token_id is not None


async def get_current_user(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)], _: BearerDoc
) -> User:
    return await authenticate(request, token)


# The aliases routes use are in `app.api.deps`; these two serve the classes below.
_Caller = Annotated[User, Depends(get_current_user)]
_Project = Annotated[str, Depends(get_project)]


class RoleRequirement:
    """`Depends(require_role(Role.admin))`: the current user, if its global role reaches
    `min_role` (401 without a valid token, 403 when the role is too low)."""

    scope: Scope = "global"

    def __init__(self, min_role: Role) -> None:
        self.min_role = min_role

    async def __call__(self, user: _Caller) -> User:
        require(user, self.min_role, "global", None)
        return user

    def __repr__(self) -> str:
        return f"require_role({self.min_role})"


class ProjectRoleRequirement(RoleRequirement):
    """`Depends(require_project_role(Role.operator))`: the current user, if its role in the
    request's `?project=` reaches `min_role` (404 when it has none there)."""

    scope: Scope = "project"

    async def __call__(self, user: _Caller, project: _Project) -> User:  # type: ignore[override]
        require(user, self.min_role, "project", project)
        return user

    def __repr__(self) -> str:
        return f"require_project_role({self.min_role})"


class PathProjectRequirement(RoleRequirement):
    """`/projects/{project}` reads: the role in the project the path names."""

    scope: Scope = "project"

    async def __call__(  # type: ignore[override]
        self,
        user: _Caller,
        project: Annotated[str, Path(pattern=PROJECT_PATTERN, description="Project name")],
    ) -> User:
        require(user, self.min_role, "project", project)
        return user

    def __repr__(self) -> str:
        return f"require_path_project_role({self.min_role})"


class LoginOnlyRequirement(RoleRequirement):
    """Any logged-in user, but with a login (JWT), not an API token: creating or revoking
    tokens and changing a password need the password behind them."""

    async def __call__(self, user: _Caller, request: Request) -> User:  # type: ignore[override]
        require(user, self.min_role, "global", None)
        if via_api_token(request):
            raise PermissionDeniedError("This needs a login (username and password), not a token")
        return user

    def __repr__(self) -> str:
        return f"require_login({self.min_role})"


@cache
def require_role(role: Role) -> RoleRequirement:
    return RoleRequirement(role)


@cache
def require_project_role(role: Role) -> ProjectRoleRequirement:
    return ProjectRoleRequirement(role)


@asynccontextmanager
async def _overlapped(request: Request, admit: Coroutine[None, None, None]) -> AsyncIterator[None]:
    """Run the endpoint while `admit` checks the caller; its refusal wins."""
    check = asyncio.ensure_future(admit)
    if request.method != "GET":
        await check  # a safety net: only reads may start before the check is done
    try:
        yield
    except asyncio.CancelledError:
        check.cancel()
        raise
    except Exception:
        await check  # a refusal replaces the endpoint's own error
        raise
    await check


class ReadAccess:
    """`GlobalViewerRead`: the role check for reads that answer with one JSON body, overlapped
    with the work. The token itself (signature, expiry, type) is checked at once, but the
    user's standing is read from the database while the endpoint already asks LXD: on one
    client that round trip was a sixth of a 50-instance list (`bench/list_overhead.py`), and on
    PostgreSQL it is a network round trip.

    Nothing is answered before the standing is in (a dependency with `yield` and
    `scope="function"` ends before the response is sent): a deleted or disabled user, a token
    whose version moved on, or a project the caller may not see still gets its 401 (404, 403)
    instead of the answer, also when the endpoint failed. What the endpoint did meanwhile was a
    read that nobody sees. Not for routes with side effects, nor for streamed answers (a
    download opened for a refused user would only close when collected).
    """

    scope: Scope = "global"

    def __init__(self, min_role: Role) -> None:
        self.min_role = min_role

    async def __call__(
        self,
        request: Request,
        token: Annotated[str | None, Depends(oauth2_scheme)],
        _: BearerDoc,
    ) -> AsyncIterator[None]:
        async with _overlapped(request, self._check(request, token, None)):
            yield

    def _check(
        self, request: Request, token: str | None, project: str | None
    ) -> Coroutine[None, None, None]:
        """The token itself is checked now (a bad JWT is a 401 before anything runs); the
        user's standing while the endpoint works."""
        return self._admit(request, current.credential(request.app.state.settings, token), project)

    async def _admit(
        self, request: Request, credential: current.Credential, project: str | None
    ) -> None:
        caller = await current.load(request.app.state.db_engine, credential, light=True)
        if caller.user is not None:
            set_actor(request, caller.user, caller.token_id)
        require(caller.member, self.min_role, self.scope, project)

    def __repr__(self) -> str:
        return f"read_access({self.min_role}, {self.scope})"


class ProjectReadAccess(ReadAccess):
    """`ViewerRead`: `ReadAccess` with the role in the request's `?project=`."""

    scope: Scope = "project"

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        project: _Project,
        token: Annotated[str | None, Depends(oauth2_scheme)],
        _: BearerDoc,
    ) -> AsyncIterator[None]:
        async with _overlapped(request, self._check(request, token, project)):
            yield


class WSRoleRequirement:
    """The WebSocket variant, always project-scoped (`?project=`, default DEFAULT_PROJECT): the
    token comes as `?token=` (browsers cannot set headers on an upgrade; an `Authorization:
    Bearer` header works too). Refusals close the socket with 4401 (no or invalid token), 4403
    (role too low, or an `Origin` outside `CORS_ORIGINS`) or 4404 (a project the caller has no
    role in, like one that does not exist)."""

    scope: Scope = "project"

    def __init__(self, min_role: Role) -> None:
        self.min_role = min_role

    async def __call__(self, websocket: WebSocket) -> User:
        settings: Settings = websocket.app.state.settings
        origins = settings.cors_origins
        origin = websocket.headers.get("origin")
        # Browsers always send Origin; without one this is not a cross-site page (CSWSH).
        if origin is not None and "*" not in origins and origin not in origins:
            raise WebSocketAuthError(WS_CLOSE_FORBIDDEN, "Origin not allowed")
        token = websocket.query_params.get("token")
        if not token:
            scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        try:
            user = await authenticate(websocket, token)
        except AuthenticationError as exc:
            raise WebSocketAuthError(WS_CLOSE_UNAUTHORIZED, exc.detail) from None
        if ws_wants_all_projects(websocket):
            project = None  # the events stream of every project: global viewer
        else:
            project = websocket.query_params.get("project") or settings.DEFAULT_PROJECT
        try:
            require(user, self.min_role, self.scope, project)
        except LXDNotFound as exc:
            raise WebSocketAuthError(CLOSE_NOT_FOUND, exc.detail) from None
        except PermissionDeniedError as exc:
            raise WebSocketAuthError(WS_CLOSE_FORBIDDEN, exc.detail) from None
        return user

    def __repr__(self) -> str:
        return f"require_ws_role({self.min_role})"


def ws_wants_all_projects(websocket: WebSocket) -> bool:
    return websocket.query_params.get("all-projects", "").lower() in {"1", "true", "yes"}


@cache
def require_ws_role(role: Role) -> WSRoleRequirement:
    return WSRoleRequirement(role)
