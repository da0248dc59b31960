"""Queries of the user store. No HTTP here, no policy: the auth service decides, this reads
and writes. Callers own the transaction (they commit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.security import Role
from app.db.models import ProjectBinding, RefreshToken, RevokedAccessToken, User, utcnow
from app.db.standing import reader_for


def username_key(username: str) -> str:
    """What makes a name unique: `Alice` and `alice` are the same user."""
    return username.lower()


# --- users -------------------------------------------------------------------------------------
async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id, populate_existing=True)


@dataclass(frozen=True, slots=True)
class Standing:
    """What a token check needs to know of its user: its global role, whether it may still log
    in, its token version, and its project roles (`{project: role}`)."""

    role: str
    is_active: bool
    token_version: int
    projects: Mapping[str, str]
    token_revoked: bool = False  # the access token asked about was logged out


# A user's row, a row per project binding, and whether one access token was logged out.
_TOKEN_USER = (
    select(
        *User.__table__.columns,
        ProjectBinding.project.label("bound_project"),
        ProjectBinding.role.label("bound_role"),
        exists()
        .where(RevokedAccessToken.jti == bindparam("jti"))
        .correlate(None)
        .label("token_revoked"),
    )
    .outerjoin(ProjectBinding, ProjectBinding.user_id == User.id)
    .where(User.id == bindparam("user_id"))
)
_USER_COLUMNS = tuple(column.key for column in User.__table__.columns)


def user_from_rows(rows: Sequence[Any]) -> User:
    """A detached `User` with its bindings, from rows of the user's columns joined with
    `bound_project`/`bound_role` (one row per binding, or one with NULLs)."""
    first = rows[0]._mapping
    bindings = [
        ProjectBinding(user_id=first["id"], project=row.bound_project, role=row.bound_role)
        for row in rows
        if row.bound_project is not None
    ]
    return User(**{key: first[key] for key in _USER_COLUMNS}, bindings=bindings)


async def get_token_user(
    engine: AsyncEngine, user_id: int, jti: str | None = None
) -> tuple[User | None, bool]:
    """The user a token names, with its project bindings, and whether that access token was
    logged out, in one query and without a session: a detached `User` for the routes to read
    (the services that change a user load it again in their own session)."""
    async with engine.connect() as connection:
        params = {"user_id": user_id, "jti": jti or ""}
        rows = (await connection.execute(_TOKEN_USER, params)).all()
    if not rows:
        return None, False
    return user_from_rows(rows), bool(rows[0].token_revoked)


async def get_standing(
    engine: AsyncEngine, user_id: int, jti: str | None = None
) -> Standing | None:
    """What the check beside every read needs (see `get_token_user()`, one query; on a SQLite
    file it runs in one thread hop, `app.db.standing`)."""
    reader = reader_for(engine)
    if reader is not None:
        rows = await reader.rows(user_id, jti or "")
        if not rows:
            return None
        role, is_active, version, *_, revoked = rows[0]
        projects = {row[3]: row[4] for row in rows if row[3] is not None}
        return Standing(role, bool(is_active), version, projects, bool(revoked))
    user, revoked = await get_token_user(engine, user_id, jti)
    if user is None:
        return None
    return Standing(user.role, user.is_active, user.token_version, user.projects, revoked)


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    stmt = select(User).where(User.username_key == username_key(username))
    return (await session.scalars(stmt)).one_or_none()


async def list_users(
    session: AsyncSession, *, limit: int | None = None, offset: int = 0
) -> tuple[Sequence[User], int]:
    total = await session.scalar(select(func.count()).select_from(User)) or 0
    stmt = select(User).order_by(User.username_key).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).all(), total


async def count_users(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(User)) or 0


async def create_user(
    session: AsyncSession, *, username: str, password_hash: str, role: Role
) -> User:
    user = User(
        username=username,
        username_key=username_key(username),
        password_hash=password_hash,
        role=role.value,
        is_active=True,
        token_version=0,
        bindings=[],
    )
    session.add(user)
    await session.flush()
    return user


async def lock_active_admins(session: AsyncSession) -> list[int]:
    """Ids of the active admins, row-locked until the transaction ends (PostgreSQL; SQLite
    serializes writers anyway), so that two concurrent demotions cannot both pass the guard."""
    stmt = (
        select(User.id)
        .where(User.role == Role.admin.value, User.is_active.is_(True))
        .with_for_update()
    )
    return list((await session.scalars(stmt)).all())


async def count_active_admins(session: AsyncSession) -> int:
    stmt = (
        select(func.count())
        .select_from(User)
        .where(User.role == Role.admin.value, User.is_active.is_(True))
    )
    return await session.scalar(stmt) or 0


# --- project bindings --------------------------------------------------------------------------
async def set_project_role(session: AsyncSession, user: User, project: str, role: Role) -> None:
    """Bind `user` to `project` with `role` (replacing an earlier binding)."""
    for binding in user.bindings:
        if binding.project == project:
            binding.role = role.value
            break
    else:
        user.bindings.append(ProjectBinding(project=project, role=role.value))
    await session.flush()


async def remove_project_role(session: AsyncSession, user: User, project: str) -> bool:
    """Drop `user`'s binding to `project`; False when there was none."""
    kept = [binding for binding in user.bindings if binding.project != project]
    if len(kept) == len(user.bindings):
        return False
    user.bindings = kept
    await session.flush()
    return True


async def rename_project_bindings(session: AsyncSession, old: str, new: str) -> None:
    """A project renamed through the API keeps its members."""
    stmt = update(ProjectBinding).where(ProjectBinding.project == old).values(project=new)
    await session.execute(stmt)


async def drop_project_bindings(session: AsyncSession, project: str) -> None:
    """A project deleted through the API takes its bindings along (a new project of the same
    name starts without members)."""
    await session.execute(delete(ProjectBinding).where(ProjectBinding.project == project))


# --- revoked access tokens ---------------------------------------------------------------------
async def revoke_access_token(
    session: AsyncSession, *, jti: str, user_id: int, expires_at: datetime
) -> None:
    """Refuse this access token from now on (a logout); expired entries go at the same time."""
    await session.execute(
        delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < utcnow())
    )
    if await session.get(RevokedAccessToken, jti) is None:
        session.add(RevokedAccessToken(jti=jti, user_id=user_id, expires_at=expires_at))
    await session.flush()


# --- refresh tokens ----------------------------------------------------------------------------
async def add_refresh_token(
    session: AsyncSession, *, jti: str, user_id: int, family_id: str, expires_at: datetime
) -> RefreshToken:
    token = RefreshToken(id=jti, user_id=user_id, family_id=family_id, expires_at=expires_at)
    session.add(token)
    await session.flush()
    return token


async def get_refresh_token(session: AsyncSession, jti: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.id == jti).with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def rotate_refresh_token(session: AsyncSession, *, jti: str, replaced_by: str) -> bool:
    """Mark `jti` used, once: False when another request rotated or revoked it first."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.id == jti, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), replaced_by=replaced_by)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.execute(stmt)


async def revoke_user_tokens(session: AsyncSession, user_id: int) -> None:
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.execute(stmt)


async def purge_refresh_tokens(
    session: AsyncSession, *, older_than: datetime, user_id: int | None = None
) -> int:
    """Drop tokens that expired before `older_than` (of one user, or of all). Rotated tokens are
    kept until they expire: they are what reuse detection looks up."""
    stmt = delete(RefreshToken).where(RefreshToken.expires_at < older_than)
    if user_id is not None:
        stmt = stmt.where(RefreshToken.user_id == user_id)
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
