"""API tokens for scripts and CI (API.md, Part 2): create (the secret shown once, stored as its
SHA-256), list and revoke. A request that carries one is authenticated by `app.auth.current`.

What a token may do is computed at every request from the token and its user as they are then
(`app.auth.access.token_rights`): a disabled user, a lowered role or a removed project role
limits its tokens at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import access
from app.auth.errors import TokenNotFoundError, UserNotFoundError
from app.core.config import Settings
from app.core.security import Role
from app.db import api_tokens as store
from app.db import crud
from app.db.models import ApiToken, utcnow
from app.errors import BadRequestError

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "lxa_"  # noqa: S105 (the prefix every token shows, not a secret)
SECRET_BYTES = 32


def is_api_token(value: str | None) -> bool:
    return bool(value) and str(value).startswith(TOKEN_PREFIX)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


async def create_token(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    name: str,
    role: Role | None,
    projects: list[str] | None,
    expires_in_days: int | None,
) -> tuple[ApiToken, str]:
    """A new token of the user, and its secret (never stored, never shown again)."""
    user = await crud.get_user(session, user_id)
    if user is None:
        raise UserNotFoundError
    highest = access.highest_role(user)
    role = role or highest
    if not highest.admits(role):
        raise BadRequestError(f"A token cannot have more than your own role ({highest})")
    if projects is not None:
        projects = list(dict.fromkeys(projects))
        unseen = [name for name in projects if not access.sees(user, name)]
        if unseen:
            raise BadRequestError(f"You have no role in project {unseen[0]!r}")
    days = expires_in_days or settings.API_TOKEN_MAX_DAYS
    if days > settings.API_TOKEN_MAX_DAYS:
        raise BadRequestError(
            f"expires_in_days is at most {settings.API_TOKEN_MAX_DAYS} (API_TOKEN_MAX_DAYS)"
        )
    secret = _new_secret()
    now = utcnow()
    token = ApiToken(
        id=f"tok_{uuid.uuid4().hex[:16]}",
        user_id=user.id,
        name=name,
        secret_hash=secret_hash(secret),
        role=role.value,
        projects=projects,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    await store.add_token(session, token)
    await session.commit()
    log.info("auth.token_created", username=user.username, token_id=token.id, role=role.value)
    return token, secret


async def list_tokens(session: AsyncSession, *, user_id: int) -> Sequence[ApiToken]:
    return await store.list_tokens(session, user_id)


async def list_user_tokens(session: AsyncSession, *, username: str) -> Sequence[ApiToken]:
    user = await crud.get_user_by_username(session, username)
    if user is None:
        raise UserNotFoundError
    return await store.list_tokens(session, user.id)


async def revoke_token(
    session: AsyncSession, *, token_id: str, user_id: int, as_admin: bool
) -> None:
    """Revoke one of the caller's tokens (an admin: anyone's); 404 for another's or none."""
    token = await store.get_token(session, token_id)
    if token is None or (token.user_id != user_id and not as_admin):
        raise TokenNotFoundError
    await store.revoke_token(session, token)
    await session.commit()
    log.info("auth.token_revoked", token_id=token_id, by_user_id=user_id)
