"""The standing read on a SQLite file (app/db/standing.py) answers what the async engine's query
answers, sees a change the moment it is committed, and falls back where it cannot open the
store itself."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.security import Role
from app.db import crud
from app.db.migrations import upgrade_to_head
from app.db.models import utcnow
from app.db.session import make_engine, make_sessionmaker
from app.db.standing import SQLiteStandingReader, reader_for, sqlite_file


async def store(tmp_path: Path) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{tmp_path}/users.db"
    await anyio.to_thread.run_sync(upgrade_to_head, url)
    return make_engine(url)


async def slow_standing(engine: AsyncEngine, user_id: int, jti: str) -> crud.Standing | None:
    """The same standing through the async engine (the PostgreSQL path)."""
    user, revoked = await crud.get_token_user(engine, user_id, jti)
    if user is None:
        return None
    return crud.Standing(user.role, user.is_active, user.token_version, user.projects, revoked)


async def test_fast_read_agrees_with_the_engine_and_sees_every_commit(tmp_path: Path) -> None:
    engine = await store(tmp_path)
    try:
        first = reader_for(engine)
        assert isinstance(first, SQLiteStandingReader)
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            user = await crud.create_user(
                session, username="Tenant", password_hash="x", role=Role.none
            )
            await session.commit()
            user_id = user.id

        async def both(jti: str = "j1") -> crud.Standing | None:
            fast = await crud.get_standing(engine, user_id, jti)
            assert fast == await slow_standing(engine, user_id, jti)
            return fast

        assert await both() == crud.Standing("none", True, 0, {}, False)
        async with sessions() as session:
            user = await crud.get_user(session, user_id)
            assert user is not None
            await crud.set_project_role(session, user, "p1", Role.operator)
            await crud.set_project_role(session, user, "p2", Role.viewer)
            user.token_version = 3
            await session.commit()
        assert await both() == crud.Standing(
            "none", True, 3, {"p1": "operator", "p2": "viewer"}, False
        )
        async with sessions() as session:
            await crud.revoke_access_token(
                session, jti="j1", user_id=user_id, expires_at=utcnow() + timedelta(hours=1)
            )
            user = await crud.get_user(session, user_id)
            assert user is not None
            user.is_active = False
            await session.commit()
        standing = await both("j1")
        assert standing is not None
        assert (standing.is_active, standing.token_revoked) == (False, True)
        assert (await both("j2")).token_revoked is False  # type: ignore[union-attr]
        assert await both() is not None
        assert await crud.get_standing(engine, user_id + 1) is None
    finally:
        await engine.dispose()
    # Disposing the engine closes the reader's connection and thread; a later use reopens.
    assert first._connection is None
    assert reader_for(engine) is not first
    assert await crud.get_standing(engine, user_id) is not None
    await engine.dispose()


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite+aiosqlite:///./data/x.db", "./data/x.db"),
        ("sqlite+aiosqlite:////abs/x.db", "/abs/x.db"),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file:x.db?mode=ro&uri=true", None),
        ("postgresql+asyncpg://u:p@127.0.0.1/db", None),
    ],
)
def test_only_plain_sqlite_files_take_the_fast_path(url: str, file: str | None) -> None:
    assert sqlite_file(url) == file


async def test_a_memory_store_uses_the_engine() -> None:
    engine = make_engine("sqlite+aiosqlite://")
    try:
        assert reader_for(engine) is None
    finally:
        await engine.dispose()
