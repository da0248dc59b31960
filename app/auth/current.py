"""Who a token is, now: the one user loader (`load()`) and the one "still current" check
(`is_current()`), used by the HTTP dependencies, the WebSocket upgrade and the session poller
(`app.api.sessions`). No HTTP here.

A token is checked in two steps. Its own validity needs no I/O and is checked at once
(`credential()`: a JWT's signature, expiry and type, or the `lxa_` shape of an API token).
Whether its user still stands behind it needs the user store (`load()`): the user exists and is
active, and

* a login (JWT access token): its token version is still the user's (a password, role or
  active change moves it on) and it was not logged out (its `jti`);
* an API token: it is not revoked nor expired, and it acts with the least of its own rights and
  its user's rights now (`app.auth.access.token_rights()`). `last_used_at` is written at most
  once a minute per token, so a busy pipeline does not turn every read into a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import access, tokens
from app.auth.errors import AuthenticationError
from app.core.config import Settings
from app.core.security import TokenClaims, TokenError, decode_token
from app.db import api_tokens as token_store
from app.db.crud import Standing, get_standing, get_token_user
from app.db.models import ProjectBinding, User, utcnow

UserT = TypeVar("UserT", User, Standing)
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Credential:
    """A token that passed the checks without I/O: a login's claims, or an API token."""

    claims: TokenClaims | None = None
    api_token: str | None = None  # the secret (`lxa_...`)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request runs as. `member` is what the role checks read; `user` the `User` (an API
    token's: with the token's rights, not the user's), None after a light load of a login."""

    member: access.Member
    user: User | None = None
    token_id: str | None = None  # an API token's id; None for a login


def access_claims(settings: Settings, token: str | None) -> TokenClaims:
    """The claims of a valid access token (signature, expiry, type); 401 otherwise."""
    if not token:
        raise AuthenticationError("Not authenticated")
    try:
        return decode_token(settings, token, expected_type="access")
    except TokenError as exc:
        raise AuthenticationError(str(exc), code="invalid_token") from None


def credential(settings: Settings, token: str | None) -> Credential:
    """What `token` is, checked as far as it can be without the user store (401 otherwise)."""
    if tokens.is_api_token(token):
        return Credential(api_token=token)
    return Credential(claims=access_claims(settings, token))


def is_current(user: User | Standing | None, *, version: int | None, revoked: bool = False) -> bool:
    """The "still current" check: the user exists and is active, its token was not `revoked`
    (a logged-out access token, a revoked or expired API token) and, for a login (`version`:
    the token's), its token version did not move on. API tokens (`version=None`) outlive a
    version change: their rights follow the user's instead."""
    return (
        user is not None
        and user.is_active
        and not revoked
        and (version is None or user.token_version == version)
    )


def api_token_refusal(*, revoked: bool, expires_at: datetime | None, now: datetime) -> str | None:
    """Why an API token no longer works (revoked: answered like an unknown one; expired), or
    None. The request's check and the session poller's."""
    if revoked:
        return "Invalid API token"
    if expires_at is not None and expires_at <= now:
        return "API token expired"
    return None


def still_current(user: UserT | None, *, version: int | None, revoked: bool = False) -> UserT:
    """`user` if `is_current()`, else 401 `invalid_token`."""
    if user is None or not is_current(user, version=version, revoked=revoked):
        raise AuthenticationError("Token is no longer valid", code="invalid_token")
    return user


async def load(engine: AsyncEngine, credential: Credential, *, light: bool = False) -> Caller:
    """The caller behind `credential`, read from the user store now, if still current (401
    otherwise). `light`: for the check beside a read, a login's standing only (no `User`).
    One connection of its own, for one query: routes that stream for minutes must not hold
    one."""
    if credential.api_token is not None:
        return await _api_token_caller(engine, credential.api_token)
    claims = credential.claims
    assert claims is not None
    if light:
        standing = await get_standing(engine, claims.user_id, claims.jti)
        revoked = standing is not None and standing.token_revoked
        return Caller(still_current(standing, version=claims.version, revoked=revoked))
    found, logged_out = await get_token_user(engine, claims.user_id, claims.jti)
    user = still_current(found, version=claims.version, revoked=logged_out)
    return Caller(user, user)


async def _api_token_caller(engine: AsyncEngine, secret: str) -> Caller:
    """The user as the token may act: a detached `User` whose role and project roles are the
    token's rights, not the user's."""
    subject = await token_store.find_by_secret(engine, tokens.secret_hash(secret))
    now = utcnow()
    if subject is None:
        raise AuthenticationError("Invalid API token", code="invalid_token")
    refusal = api_token_refusal(revoked=subject.revoked, expires_at=subject.expires_at, now=now)
    if refusal is not None:
        raise AuthenticationError(refusal, code="invalid_token")
    user = still_current(subject.user, version=None)
    global_role, projects = access.token_rights(user, subject.role, subject.projects)
    acting = User(
        id=user.id,
        username=user.username,
        username_key=user.username_key,
        password_hash="",
        role=global_role.value,
        is_active=True,
        token_version=user.token_version,
        created_at=user.created_at,
        updated_at=user.updated_at,
        bindings=[ProjectBinding(user_id=user.id, project=p, role=r) for p, r in projects.items()],
    )
    if _stale(subject.last_used_at, now):
        await token_store.touch(engine, subject.token_id, now)
    return Caller(acting, acting, subject.token_id)


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
