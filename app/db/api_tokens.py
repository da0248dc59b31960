"""Queries of API tokens (`ApiToken`). Callers own the transaction (they commit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.crud import user_from_rows
from app.db.models import ApiToken, ProjectBinding, User, utcnow


async def add_token(session: AsyncSession, token: ApiToken) -> ApiToken:
    session.add(token)
    await session.flush()
    return token


async def list_tokens(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    """The user's tokens that are not revoked, newest first (expired ones too: they show
    `expires_at`)."""
    stmt = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    )
    return (await session.scalars(stmt)).all()


async def get_token(session: AsyncSession, token_id: str) -> ApiToken | None:
    stmt = select(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    return (await session.scalars(stmt)).one_or_none()


async def revoke_token(session: AsyncSession, token: ApiToken) -> None:
    token.revoked_at = utcnow()
    await session.flush()


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """A token found by its secret, with its user as it is now."""

    token_id: str
    name: str
    role: str
    projects: list[str] | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool
    user: User


_BY_SECRET = (
    select(
        ApiToken.id.label("token_id"),
        ApiToken.name.label("token_name"),
        ApiToken.role.label("token_role"),
        ApiToken.projects.label("token_projects"),
        ApiToken.expires_at.label("token_expires_at"),
        ApiToken.last_used_at.label("token_last_used_at"),
        ApiToken.revoked_at.label("token_revoked_at"),
        *User.__table__.columns,
        ProjectBinding.project.label("bound_project"),
        ProjectBinding.role.label("bound_role"),
    )
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(ProjectBinding, ProjectBinding.user_id == User.id)
    .where(ApiToken.secret_hash == bindparam("secret_hash"))
)


async def find_by_secret(engine: AsyncEngine, secret_hash: str) -> TokenSubject | None:
    """One query: the token, its user and the user's project bindings (a detached `User`)."""
    async with engine.connect() as connection:
        rows = (await connection.execute(_BY_SECRET, {"secret_hash": secret_hash})).all()
    if not rows:
        return None
    first = rows[0]._mapping
    return TokenSubject(
        token_id=first["token_id"],
        name=first["token_name"],
        role=first["token_role"],
        projects=first["token_projects"],
        expires_at=first["token_expires_at"],
        last_used_at=first["token_last_used_at"],
        revoked=first["token_revoked_at"] is not None,
        user=user_from_rows(rows),
    )


async def touch(engine: AsyncEngine, token_id: str, when: datetime) -> None:
    """Record a use (at most once a minute per token: see the caller)."""
    async with engine.begin() as connection:
        await connection.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when)
        )


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a token grants now (for a WebSocket session opened with it), and whether it still
    may (`app.auth.current.api_token_refusal()`)."""

    role: str
    projects: list[str] | None
    revoked: bool = False
    expires_at: datetime | None = None


async def get_grant(engine: AsyncEngine, token_id: str) -> TokenGrant | None:
    """The token's grant, or None when it was deleted."""
    stmt = select(ApiToken.role, ApiToken.projects, ApiToken.expires_at, ApiToken.revoked_at).where(
        ApiToken.id == token_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(stmt)).first()
    if row is None:
        return None
    return TokenGrant(row.role, row.projects, row.revoked_at is not None, row.expires_at)
