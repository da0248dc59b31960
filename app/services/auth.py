"""What the auth and users routes ask of the user store: login, token rotation, logout,
password changes and user administration, with the policies that go with them (reuse
detection, the last-admin guard, cutting off old tokens).

No FastAPI here: errors are `AppError`s that carry their status, code and headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import (
    Role,
    TokenClaims,
    TokenError,
    access_token_lifetime,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from app.db import crud
from app.db.models import User, utcnow
from app.errors import AppError, BadRequestError, ConflictError, NotFoundError

log = structlog.get_logger(__name__)

INVALID_CREDENTIALS = "Incorrect username or password"


# --- errors ------------------------------------------------------------------------------------
class AuthenticationError(AppError):
    """401: no token, a refused token, or a user who lost access. Carries the challenge."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "Not authenticated", *, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.headers = {"WWW-Authenticate": "Bearer"}


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class PermissionDeniedError(AppError):
    status_code = 403
    code = "forbidden"


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry in {retry_after} s")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class RateLimitUnavailableError(AppError):
    """The shared rate-limit storage is down: password checks are refused (fail closed)."""

    status_code = 503
    code = "rate_limit_unavailable"
    retry_after = 5

    def __init__(self) -> None:
        super().__init__(
            "Logins are paused: the rate-limit store cannot be reached; "
            f"retry in {self.retry_after} s"
        )
        self.headers = {"Retry-After": str(self.retry_after)}


class UsernameTakenError(ConflictError):
    code = "username_taken"


class LastAdminError(ConflictError):
    code = "last_admin"

    def __init__(self) -> None:
        super().__init__("The last active admin cannot be deleted, disabled or demoted")


class WrongPasswordError(BadRequestError):
    code = "wrong_password"

    def __init__(self) -> None:
        super().__init__("The current password is incorrect")


class UserNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("User not found")


# --- tokens ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


async def _issue_pair(
    session: AsyncSession, settings: Settings, user: User, *, family_id: str | None = None
) -> tuple[TokenPair, str]:
    access, _ = create_token(
        settings, user_id=user.id, token_version=user.token_version, kind="access"
    )
    refresh, claims = create_token(
        settings, user_id=user.id, token_version=user.token_version, kind="refresh"
    )
    await crud.add_refresh_token(
        session,
        jti=claims.jti,
        user_id=user.id,
        family_id=family_id or uuid.uuid4().hex,
        expires_at=claims.expires_at,
    )
    expires_in = int(access_token_lifetime(settings).total_seconds())
    return TokenPair(access, refresh, expires_in), claims.jti


async def login(
    session: AsyncSession, settings: Settings, *, username: str, password: str
) -> TokenPair:
    """Check the credentials (one hash verification whether or not the user exists) and
    start a new refresh-token family. An outdated hash (bcrypt) is replaced by Argon2id."""
    user = await crud.get_user_by_username(session, username)
    ok, new_hash = await verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        reason = "unknown_user" if user is None else "wrong_password" if not ok else "disabled"
        log.info("auth.login_failed", username=username[:64], reason=reason)
        raise InvalidCredentialsError
    if new_hash is not None:
        user.password_hash = new_hash
        log.info("auth.password_rehashed", user_id=user.id)
    pair, _ = await _issue_pair(session, settings, user)
    # Housekeeping on the way: this user's expired refresh tokens can go.
    await crud.purge_refresh_tokens(session, older_than=utcnow(), user_id=user.id)
    await session.commit()
    log.info("auth.login", user_id=user.id, username=user.username)
    return pair


def _refused(exc: TokenError) -> AuthenticationError:
    return AuthenticationError(str(exc), code="invalid_token")


async def refresh(session: AsyncSession, settings: Settings, *, refresh_token: str) -> TokenPair:
    """Rotate: the presented token is spent and a new pair comes back. A token that was
    already rotated is a sign of theft: the whole family (that login's chain) is revoked."""
    try:
        claims = decode_token(settings, refresh_token, expected_type="refresh")
    except TokenError as exc:
        raise _refused(exc) from None
    row = await crud.get_refresh_token(session, claims.jti)
    if row is None or row.user_id != claims.user_id:
        raise AuthenticationError("Invalid refresh token", code="invalid_token")
    if row.revoked_at is not None:
        if row.replaced_by is not None:
            await crud.revoke_family(session, row.family_id)
            await session.commit()
            log.warning("auth.refresh_reuse_detected", user_id=row.user_id, family=row.family_id)
        raise AuthenticationError("Refresh token has been revoked", code="invalid_token")
    user = await crud.get_user(session, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.version:
        await crud.revoke_family(session, row.family_id)
        await session.commit()
        raise AuthenticationError("Refresh token is no longer valid", code="invalid_token")
    family_id = row.family_id
    pair, new_jti = await _issue_pair(session, settings, user, family_id=family_id)
    if not await crud.rotate_refresh_token(session, jti=claims.jti, replaced_by=new_jti):
        # Another request spent this token between our read and our write: that is a reuse.
        await session.rollback()
        await crud.revoke_family(session, family_id)
        await session.commit()
        log.warning("auth.refresh_reuse_detected", user_id=claims.user_id, family=family_id)
        raise AuthenticationError("Refresh token has been revoked", code="invalid_token")
    await session.commit()
    return pair


async def logout(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    refresh_token: str,
    access: TokenClaims,
) -> None:
    """Revoke the session the refresh token belongs to (its whole family) and the access token
    the request came with. Idempotent; an expired refresh token is still accepted here, a
    foreign or forged one is not."""
    try:
        claims = decode_token(settings, refresh_token, expected_type="refresh", verify_exp=False)
    except TokenError as exc:
        raise _refused(exc) from None
    if claims.user_id != user_id:
        raise AuthenticationError("Invalid refresh token", code="invalid_token")
    row = await crud.get_refresh_token(session, claims.jti)
    if row is not None and row.user_id == user_id:
        await crud.revoke_family(session, row.family_id)
    await crud.revoke_access_token(
        session, jti=access.jti, user_id=user_id, expires_at=access.expires_at
    )
    await session.commit()
    log.info("auth.logout", user_id=user_id)


def _cut_off(user: User) -> None:
    """Every token issued so far stops working (access tokens carry the version)."""
    user.token_version += 1


async def change_password(
    session: AsyncSession, *, user_id: int, current_password: str, new_password: str
) -> None:
    user = await crud.get_user(session, user_id)
    if user is None:
        raise AuthenticationError("User no longer exists")
    ok, _ = await verify_password(current_password, user.password_hash)
    if not ok:
        log.info("auth.password_change_refused", user_id=user_id)
        raise WrongPasswordError
    user.password_hash = await hash_password(new_password)
    _cut_off(user)
    await crud.revoke_user_tokens(session, user.id)
    await session.commit()
    log.info("auth.password_changed", user_id=user_id)


# --- user administration -----------------------------------------------------------------------
async def register(session: AsyncSession, *, username: str, password: str, role: Role) -> User:
    if await crud.get_user_by_username(session, username) is not None:
        raise UsernameTakenError(f"Username {username!r} is already taken")
    hashed = await hash_password(password)
    try:
        user = await crud.create_user(session, username=username, password_hash=hashed, role=role)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise UsernameTakenError(f"Username {username!r} is already taken") from None
    log.info("auth.user_created", username=user.username, role=user.role)
    return user


async def list_users(
    session: AsyncSession, *, limit: int | None, offset: int
) -> tuple[Sequence[User], int]:
    return await crud.list_users(session, limit=limit, offset=offset)


async def get_user(session: AsyncSession, username: str) -> User:
    user = await crud.get_user_by_username(session, username)
    if user is None:
        raise UserNotFoundError
    return user


def _is_active_admin(user: User) -> bool:
    return user.is_active and user.role == Role.admin.value


async def _ensure_an_admin_remains(session: AsyncSession) -> None:
    await session.flush()
    if await crud.count_active_admins(session) == 0:
        await session.rollback()
        raise LastAdminError


async def update_user(
    session: AsyncSession,
    *,
    username: str,
    role: Role | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change role, active flag and/or password. Any of them cuts off the user's tokens."""
    # Hash first: no row lock is held during the 0.15 s it takes.
    new_hash = await hash_password(password) if password is not None else None
    user = await get_user(session, username)
    was_admin = _is_active_admin(user)
    if was_admin:
        await crud.lock_active_admins(session)
    changed: list[str] = []
    if role is not None and role.value != user.role:
        user.role = role.value
        changed.append("role")
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changed.append("is_active")
    if new_hash is not None:
        user.password_hash = new_hash
        changed.append("password")
    if not changed:
        return user
    if was_admin and not _is_active_admin(user):
        await _ensure_an_admin_remains(session)
    _cut_off(user)
    await crud.revoke_user_tokens(session, user.id)
    await session.commit()
    log.info("auth.user_updated", username=user.username, changed=changed)
    return user


async def delete_user(session: AsyncSession, *, username: str) -> None:
    user = await get_user(session, username)
    was_admin = _is_active_admin(user)
    if was_admin:
        await crud.lock_active_admins(session)
    await session.delete(user)
    if was_admin:
        await _ensure_an_admin_remains(session)
    await session.commit()
    log.info("auth.user_deleted", username=username)


class BindingNotFoundError(NotFoundError):
    pass


async def set_project_role(
    session: AsyncSession, *, username: str, project: str, role: Role
) -> User:
    """Give `username` `role` in `project` (viewer or operator; admin is global only). Takes
    effect at the user's next request; its tokens stay valid."""
    user = await get_user(session, username)
    await crud.set_project_role(session, user, project, role)
    await session.commit()
    log.info("auth.project_role_set", username=user.username, project=project, role=role.value)
    return user


async def remove_project_role(session: AsyncSession, *, username: str, project: str) -> None:
    user = await get_user(session, username)
    if not await crud.remove_project_role(session, user, project):
        raise BindingNotFoundError(f"User {user.username!r} has no role in project {project!r}")
    await session.commit()
    log.info("auth.project_role_removed", username=user.username, project=project)
