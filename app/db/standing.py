"""The user's standing beside every read, in one thread hop on SQLite.

Every JSON read checks that its token's user is still current (`get_standing()`): on the async
engine that is a pool checkout, an execute, a fetch and a rollback, each a hop to aiosqlite's
thread (about 1 ms). When the read itself is answered from memory (the read model) that check
is most of the request. On a file-based SQLite store the same query runs here on the standard
library's `sqlite3`, on one worker thread that owns one autocommit connection: one hop, about
0.1 ms. Each read is its own read transaction, so a change another connection (or replica)
committed is seen by the next read, as before. PostgreSQL keeps the async engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, event, exists, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import ProjectBinding, RevokedAccessToken, User
from app.db.session import SQLITE_BUSY_TIMEOUT_MS

# The same rows as crud._TOKEN_USER, with only the columns a standing needs.
_STANDING = (
    select(
        User.role,
        User.is_active,
        User.token_version,
        ProjectBinding.project,
        ProjectBinding.role,
        exists().where(RevokedAccessToken.jti == bindparam("jti")).correlate(None),
    )
    .outerjoin(ProjectBinding, ProjectBinding.user_id == User.id)
    .where(User.id == bindparam("user_id"))
)
STANDING_SQL = str(_STANDING.compile(dialect=sqlite_dialect.dialect(paramstyle="named")))

Row = tuple[Any, ...]


def sqlite_file(url: str | URL) -> str | None:
    """The file of a plain file-based SQLite URL, or None (memory, URI or another backend)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or parsed.query or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return database


class SQLiteStandingReader:
    """Runs the standing query on one thread with one read-only connection of its own."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._connection: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="standing")

    async def rows(self, user_id: int, jti: str) -> list[Row]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._query, user_id, jti)

    def _query(self, user_id: int, jti: str) -> list[Row]:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection.execute(STANDING_SQL, {"user_id": user_id, "jti": jti}).fetchall()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA query_only=ON")
        return connection

    def close(self) -> None:
        """Close the connection on its own thread, then stop the thread."""

        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        try:
            self._executor.submit(close_connection).result()
        except RuntimeError:  # already shut down
            return
        self._executor.shutdown(wait=True)


_readers: WeakKeyDictionary[Any, SQLiteStandingReader | None] = WeakKeyDictionary()


def reader_for(engine: AsyncEngine) -> SQLiteStandingReader | None:
    """The engine's reader (made on first use, closed when the engine is disposed), or None
    when the store is not a SQLite file."""
    sync_engine = engine.sync_engine
    if sync_engine in _readers:
        return _readers[sync_engine]
    database = sqlite_file(engine.url)
    reader = SQLiteStandingReader(database) if database else None
    _readers[sync_engine] = reader
    if reader is not None:
        event.listen(sync_engine, "engine_disposed", lambda *_: _dispose(sync_engine))
    return reader


def _dispose(sync_engine: Any) -> None:
    reader = _readers.pop(sync_engine, None)
    if reader is not None:
        reader.close()
