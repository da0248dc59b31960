"""Roles, password hashing and JWTs.

* Passwords: pwdlib with Argon2id for every new hash; bcrypt hashes (older stores) still verify
  and are replaced by Argon2id on the next login. Hashing is CPU-heavy (about 0.15 s), so it
  always runs in a small pool of low-priority worker threads: a burst of logins can neither
  starve the event loop nor eat the memory of many 64 MiB Argon2 runs at once.
* Tokens: PyJWT, HS256 only, with `sub` (user id), `exp`, `iat`, `jti`, `type` (access|refresh)
  and `ver` (the user's token version: bumping it cuts off every token issued before).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, Literal, TypeVar

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import HashVerificationError, UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.core.config import Settings

JWT_ALGORITHM = "HS256"
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$"

TokenType = Literal["access", "refresh"]
T = TypeVar("T")


class Role(StrEnum):
    """Hierarchical roles: a route for role R admits every role at or above R. `none` as a
    global role means "only the projects the user is bound to" (`app.auth.access`)."""

    none = "none"
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    @property
    def level(self) -> int:
        return _ROLE_LEVELS[self]

    def admits(self, required: Role) -> bool:
        """True when a user with this role may use a route that needs `required`."""
        return self.level >= required.level


_ROLE_LEVELS = {Role.none: 0, Role.viewer: 1, Role.operator: 2, Role.admin: 3}


# --- passwords ---------------------------------------------------------------------------------
password_hash = PasswordHash((Argon2Hasher(), BcryptHasher()))

# Verified against when the user does not exist, so that an unknown name costs the same time as
# a wrong password (no user enumeration by timing).
DUMMY_HASH = password_hash.hash(uuid.uuid4().hex)

# Hashing threads: few (each Argon2id run takes 64 MiB and up to 4 cores) and niced, so that a
# burst of logins waits its turn instead of taking the CPU from the event loop. Measured with
# `bench/login_concurrency.py` on 2 cores: /health/live p99 during 20 concurrent logins is
# about 40 ms at normal priority, about 17 ms at nice 10.
HASH_WORKERS = max(1, (os.cpu_count() or 2) // 2)
HASH_NICENESS = 10


def _lower_thread_priority() -> None:
    # Linux: nice values are per thread, and Argon2's own lane threads inherit this one's.
    with suppress(AttributeError, OSError):  # elsewhere, or not allowed: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


@cache
def _hash_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=HASH_WORKERS,
        thread_name_prefix="password-hash",
        initializer=_lower_thread_priority,
    )


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hash_executor(), fn, *args)


def _verify_and_update(password: str, hashed: str) -> tuple[bool, str | None]:
    try:
        return password_hash.verify_and_update(password, hashed)
    except (UnknownHashError, HashVerificationError, ValueError):
        # A corrupt stored hash, or a >72-byte password against bcrypt: bcrypt 5 refuses it, and
        # pwdlib 0.4 re-raises that as HashVerificationError (0.2/0.3 let the ValueError through).
        return False, None


async def hash_password(password: str) -> str:
    return await _off_loop(password_hash.hash, password)


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """(matches, new hash or None). A new hash comes back when the stored one is outdated
    (bcrypt, or older Argon2 parameters); store it. `hashed=None` spends a dummy verification."""
    if hashed is None:
        await _off_loop(_verify_and_update, password, DUMMY_HASH)
        return False, None
    return await _off_loop(_verify_and_update, password, hashed)


# --- tokens ------------------------------------------------------------------------------------
class TokenError(Exception):
    """A token that must be refused (bad signature, expired, wrong type, malformed...)."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    jti: str
    type: TokenType
    version: int
    issued_at: datetime
    expires_at: datetime


def _secret(settings: Settings) -> str:
    return settings.JWT_SECRET.get_secret_value()


def access_token_lifetime(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.JWT_ACCESS_TOKEN_EXPIRE_MINUTES)


def refresh_token_lifetime(settings: Settings) -> timedelta:
    return timedelta(days=settings.JWT_REFRESH_TOKEN_EXPIRE_DAYS)


def create_token(
    settings: Settings,
    *,
    user_id: int,
    token_version: int,
    kind: TokenType,
    jti: str | None = None,
    now: datetime | None = None,
) -> tuple[str, TokenClaims]:
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    lifetime = (
        access_token_lifetime(settings) if kind == "access" else refresh_token_lifetime(settings)
    )
    claims = TokenClaims(
        user_id=user_id,
        jti=jti or uuid.uuid4().hex,
        type=kind,
        version=token_version,
        issued_at=issued,
        expires_at=issued + lifetime,
    )
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "iat": issued,
        "exp": claims.expires_at,
        "jti": claims.jti,
        "type": kind,
        "ver": token_version,
    }
    return jwt.encode(payload, _secret(settings), algorithm=JWT_ALGORITHM), claims


def decode_token(
    settings: Settings, token: str, *, expected_type: TokenType, verify_exp: bool = True
) -> TokenClaims:
    """Check signature, algorithm, required claims, expiry and type; raise `TokenError`."""
    try:
        payload = jwt.decode(
            token,
            _secret(settings),
            algorithms=[JWT_ALGORITHM],
            options={
                "require": ["exp", "iat", "sub", "jti", "type", "ver"],
                "verify_exp": verify_exp,
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("Invalid token") from exc
    if payload.get("type") != expected_type:
        raise TokenError(f"Wrong token type: {expected_type} token expected")
    try:
        user_id = int(payload["sub"])
        version = int(payload["ver"])
        return TokenClaims(
            user_id=user_id,
            jti=str(payload["jti"]),
            type=expected_type,
            version=version,
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (TypeError, ValueError) as exc:
        raise TokenError("Invalid token") from exc


# --- WebSocket authentication ------------------------------------------------------------------
WS_CLOSE_UNAUTHORIZED = 4401
WS_CLOSE_FORBIDDEN = 4403


class WebSocketAuthError(Exception):
    """Refuses a WebSocket: the handler accepts it, then closes with `code` and `reason`
    (a close before the accept would turn into a bare HTTP 403 at the handshake)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
