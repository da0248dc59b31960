"""The first admin: created once, at start, when the store has no user at all and
`SEED_ADMIN_USERNAME`/`SEED_ADMIN_PASSWORD` are set. Restarts do nothing more; the password
is never logged."""

from __future__ import annotations

import re

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.security import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    Role,
    hash_password,
)
from app.db import crud

log = structlog.get_logger(__name__)


class SeedError(RuntimeError):
    """The seed settings cannot make a usable admin; the start stops with this message."""


async def seed_admin(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> bool:
    """Create the seed admin if the store is empty; True when it was created now."""
    username = settings.SEED_ADMIN_USERNAME.strip()
    password = settings.SEED_ADMIN_PASSWORD.get_secret_value()
    if not username and not password:
        return False
    async with sessionmaker() as session:
        if await crud.count_users(session) > 0:
            return False
        if not username or not password:
            log.warning(
                "auth.seed_admin_skipped",
                reason="set both SEED_ADMIN_USERNAME and SEED_ADMIN_PASSWORD",
            )
            return False
        if not re.fullmatch(USERNAME_PATTERN, username):
            raise SeedError(
                "SEED_ADMIN_USERNAME must be 2-64 characters: letters, digits and _ . @ - "
                "(starting with a letter or digit)"
            )
        if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
            raise SeedError(
                f"SEED_ADMIN_PASSWORD must be {PASSWORD_MIN_LENGTH} to "
                f"{PASSWORD_MAX_LENGTH} characters long"
            )
        hashed = await hash_password(password)
        try:
            await crud.create_user(
                session, username=username, password_hash=hashed, role=Role.admin
            )
            await session.commit()
        except IntegrityError:
            # Another replica seeded at the same moment.
            await session.rollback()
            return False
    log.info("auth.seed_admin_created", username=username)
    return True
