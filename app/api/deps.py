"""Annotated dependencies, declared once: `LXDDep`, `ProjectDep`, `ListParams`, `WaitParams`,
and (below) the users and roles every route declares.

They are all `async def`: FastAPI runs a plain `def` dependency in its thread pool, which costs
about a millisecond per request for nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Annotated, TypeVar

import structlog
from fastapi import Depends, Query, Request, WebSocket
from fastapi.security import OAuth2PasswordBearer
from limits import RateLimitItem
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.ratelimit import LoginLimits, RateLimiter, TrustedProxies, client_ip
from app.core.security import (
    WS_CLOSE_FORBIDDEN,
    WS_CLOSE_UNAUTHORIZED,
    Role,
    TokenClaims,
    TokenError,
    WebSocketAuthError,
    decode_token,
)
from app.db.crud import Standing, get_standing, username_key
from app.db.models import User
from app.schemas.common import PROJECT_PATTERN
from app.services.auth import (
    AuthenticationError,
    InvalidCredentialsError,
    PermissionDeniedError,
    RateLimitedError,
    WrongPasswordError,
)
from app.services.lxd_client import LXDClient
from app.utils.pagination import ListQuery

log = structlog.get_logger(__name__)
UserT = TypeVar("UserT", User, Standing)


async def get_app_settings(connection: HTTPConnection) -> Settings:
    """The app's own settings (`create_app(settings)` may differ from the environment's)."""
    settings: Settings = connection.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_lxd(connection: HTTPConnection) -> LXDClient:
    client: LXDClient = connection.app.state.lxd
    return client


LXDDep = Annotated[LXDClient, Depends(get_lxd)]


async def get_project(
    settings: SettingsDep,
    project: Annotated[
        str | None,
        Query(
            pattern=PROJECT_PATTERN,
            description="LXD project to scope the request to (default: DEFAULT_PROJECT)",
            examples=["default"],
        ),
    ] = None,
) -> str:
    return project or settings.DEFAULT_PROJECT


ProjectDep = Annotated[str, Depends(get_project)]


# Paging bounds: an offset past what the user store (SQLite: 64-bit) or a list can hold is a 422,
# not an OverflowError deep in the driver.
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**31 - 1
PageLimit = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (1-{MAX_PAGE_SIZE})")
]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]


async def get_list_query(
    expand: Annotated[
        bool, Query(description="Full objects (LXD recursion=1); false: names only")
    ] = True,
    filter_: Annotated[
        str | None,
        Query(
            alias="filter",
            max_length=1024,
            description="LXD filter, passed through (e.g. `status eq Running`)",
        ),
    ] = None,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> ListQuery:
    return ListQuery(expand=expand, filter=filter_, limit=limit, offset=offset)


ListParams = Annotated[ListQuery, Depends(get_list_query)]


@dataclass(frozen=True, slots=True)
class WaitQuery:
    wait: bool
    timeout: int


async def get_wait_query(
    wait: Annotated[
        bool,
        Query(description="Wait for the LXD operation and answer with it (200) instead of 202"),
    ] = False,
    timeout: Annotated[
        int, Query(ge=1, le=3600, description="With wait=true: seconds to wait at most")
    ] = 60,
) -> WaitQuery:
    return WaitQuery(wait=wait, timeout=timeout)


WaitParams = Annotated[WaitQuery, Depends(get_wait_query)]


# --- database, current user, roles ---------------------------------------------------------------
async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = connection.app.state.db_sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

# Swagger's "Authorize" button: the OAuth2 password flow posts a form to /auth/token and sends
# the access token it gets back as `Authorization: Bearer ...`.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="Log in with username and password (the client id and secret stay empty), "
    "or send `Authorization: Bearer <access token>` from `POST /api/v1/auth/login`.",
)


def access_claims(connection: HTTPConnection, token: str | None) -> TokenClaims:
    """The claims of a valid access token (signature, expiry, type); 401 otherwise."""
    if not token:
        raise AuthenticationError("Not authenticated")
    settings: Settings = connection.app.state.settings
    try:
        return decode_token(settings, token, expected_type="access")
    except TokenError as exc:
        raise AuthenticationError(str(exc), code="invalid_token") from None


async def load_token_user(connection: HTTPConnection, claims: TokenClaims) -> User:
    """The user the claims name, read from the database now: a deleted or disabled user, or one
    whose token version moved on (password, role or active change), is refused."""
    # A short session of its own: routes that stream for minutes must not hold a connection.
    sessionmaker: async_sessionmaker[AsyncSession] = connection.app.state.db_sessionmaker
    async with sessionmaker() as session:
        user = await session.get(User, claims.user_id)
    return _still_current(user, claims)


def _require_role(role: str, min_role: Role) -> None:
    if not Role(role).admits(min_role):
        raise PermissionDeniedError(f"This action needs the {min_role} role")


def _still_current(user: UserT | None, claims: TokenClaims) -> UserT:
    """The user, unless deleted, disabled, or its token version moved on (401)."""
    if user is None or not user.is_active or user.token_version != claims.version:
        raise AuthenticationError("Token is no longer valid", code="invalid_token")
    return user


async def authenticate_token(connection: HTTPConnection, token: str | None) -> User:
    """The user behind an access token (see `access_claims()` and `load_token_user()`)."""
    return await load_token_user(connection, access_claims(connection, token))


async def get_current_user(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    return await authenticate_token(request, token)


CurrentUser = Annotated[User, Depends(get_current_user)]


class RoleRequirement:
    """`Depends(require_role(Role.operator))`: the current user, if their role reaches
    `min_role` (401 without a valid token, 403 when the role is too low). The role table test
    reads `min_role` to check every route against API.md."""

    def __init__(self, min_role: Role) -> None:
        self.min_role = min_role

    async def __call__(self, user: CurrentUser) -> User:
        _require_role(user.role, self.min_role)
        return user

    def __repr__(self) -> str:
        return f"require_role({self.min_role})"


@cache
def require_role(role: Role) -> RoleRequirement:
    return RoleRequirement(role)


ViewerUser = Annotated[User, Depends(require_role(Role.viewer))]
OperatorUser = Annotated[User, Depends(require_role(Role.operator))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]


class ReadAccess:
    """`ViewerRead`: the role check for reads that answer with one JSON body, overlapped with
    the work. The token itself (signature, expiry, type) is checked at once, but the user's row
    is read from the database while the endpoint already asks LXD: on one client that round
    trip was a sixth of a 50-instance list (`bench/list_overhead.py`), and on PostgreSQL it is a
    network round trip.

    Nothing is answered before the row is in (a dependency with `yield` and `scope="function"`
    ends before the response is sent): a deleted or disabled user, or a token whose version
    moved on, still gets its 401 instead of the answer, also when the endpoint failed. What the
    endpoint did meanwhile was a read that nobody sees. Not for routes with side effects, nor
    for streamed answers (a download opened for a refused user would only close when collected).
    """

    def __init__(self, min_role: Role) -> None:
        self.min_role = min_role

    async def __call__(
        self, request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
    ) -> AsyncIterator[None]:
        claims = access_claims(request, token)
        check = asyncio.ensure_future(self._admit(request, claims))
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

    async def _admit(self, request: Request, claims: TokenClaims) -> None:
        standing = await get_standing(request.app.state.db_engine, claims.user_id)
        _require_role(_still_current(standing, claims).role, self.min_role)

    def __repr__(self) -> str:
        return f"read_access({self.min_role})"


ViewerRead = Annotated[None, Depends(ReadAccess(Role.viewer), scope="function")]


class WSRoleRequirement:
    """The WebSocket variant: the token comes as `?token=` (browsers cannot set headers on an
    upgrade; an `Authorization: Bearer` header works too). Refusals close the socket with 4401
    (no or invalid token) or 4403 (role too low, or an `Origin` outside `CORS_ORIGINS`)."""

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
            user = await authenticate_token(websocket, token)
        except AuthenticationError as exc:
            raise WebSocketAuthError(WS_CLOSE_UNAUTHORIZED, exc.detail) from None
        if not Role(user.role).admits(self.min_role):
            raise WebSocketAuthError(WS_CLOSE_FORBIDDEN, f"This needs the {self.min_role} role")
        return user

    def __repr__(self) -> str:
        return f"require_ws_role({self.min_role})"


@cache
def require_ws_role(role: Role) -> WSRoleRequirement:
    return WSRoleRequirement(role)


WSViewerUser = Annotated[User, Depends(require_ws_role(Role.viewer))]
WSOperatorUser = Annotated[User, Depends(require_ws_role(Role.operator))]
WSAdminUser = Annotated[User, Depends(require_ws_role(Role.admin))]


# --- rate limits -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RateLimitGuard:
    """Counts attempts against one limit (refresh): per client IP when the dependency runs."""

    limiter: RateLimiter
    item: RateLimitItem
    scope: str
    ip: str

    async def _hit(self, kind: str, value: str) -> None:
        decision = await self.limiter.hit(self.item, self.scope, kind, value)
        if not decision.allowed:
            log.info("auth.rate_limited", scope=self.scope, by=kind)
            raise RateLimitedError(decision.retry_after)

    async def check_ip(self) -> None:
        await self._hit("ip", self.ip)


def _guard(request: Request, scope: str, limit: str) -> RateLimitGuard:
    settings: Settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.rate_limiter
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers, TrustedProxies(settings.FORWARDED_ALLOW_IPS))
    return RateLimitGuard(limiter=limiter, item=RateLimiter.parse(limit), scope=scope, ip=ip)


@dataclass(frozen=True, slots=True)
class LoginGuard:
    """Holds a password check (login, password change) to the login limits: failures per
    address, per (username, address) and per username; successes per address. Refused before
    the password is hashed; the outcome is counted once the service has decided it."""

    limiter: RateLimiter
    rules: LoginLimits
    ip: str

    @asynccontextmanager
    async def attempt(self, username: str) -> AsyncIterator[None]:
        attempt = await self.limiter.admit_login(
            self.rules, ip=self.ip, user=username_key(username)
        )
        if not attempt.decision.allowed:
            log.info("auth.rate_limited", scope="login", by=attempt.decision.by)
            raise RateLimitedError(attempt.decision.retry_after)
        try:
            yield
        except (InvalidCredentialsError, WrongPasswordError):
            await attempt.failed()
            raise
        except BaseException:
            await attempt.abandoned()
            raise
        await attempt.succeeded()


@cache
def _login_limits(pair: str, ip: str, user: str, successes: str) -> LoginLimits:
    return LoginLimits.parse(
        user_ip_failures=pair, ip_failures=ip, user_failures=user, successes=successes
    )


async def login_rate_limit(request: Request) -> LoginGuard:
    settings: Settings = request.app.state.settings
    rules = _login_limits(
        settings.RATE_LIMIT_LOGIN,
        settings.RATE_LIMIT_LOGIN_IP,
        settings.RATE_LIMIT_LOGIN_USER,
        settings.RATE_LIMIT_LOGIN_SUCCESS,
    )
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers, TrustedProxies(settings.FORWARDED_ALLOW_IPS))
    return LoginGuard(limiter=request.app.state.rate_limiter, rules=rules, ip=ip)


async def refresh_rate_limit(request: Request) -> RateLimitGuard:
    guard = _guard(request, "refresh", request.app.state.settings.RATE_LIMIT_REFRESH)
    await guard.check_ip()
    return guard


LoginRateLimit = Annotated[LoginGuard, Depends(login_rate_limit)]
RefreshRateLimit = Annotated[RateLimitGuard, Depends(refresh_rate_limit)]
