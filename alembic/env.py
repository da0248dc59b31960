"""Alembic environment: async engine, the models' metadata, batch mode (SQLite can only
alter tables by copying them).

The URL comes from the caller (`config.attributes["database_url"]`, set by the app when it
migrates at start) or from the settings (`DATABASE_URL`, `.env`) for the `alembic` command.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.db.migrations import MIGRATION_LOCK_KEY
from app.db.models import Base, UTCDateTime

config = context.config

# The app calls Alembic with its own logging in place; the command line (`make migrate`,
# `make run`, the container's entrypoint) gets the same JSON lines as the app.
if config.attributes.get("configure_logging", True):
    configure_logging(get_settings().LOG_LEVEL)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)  # no SQL echo

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().DATABASE_URL


def _render_item(type_: str, obj: Any, _autogen_context: Any) -> str | Literal[False]:
    # Migrations use plain SQLAlchemy types, so they never import the app's models.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas that start at once migrate one after the other (the later ones find the
            # schema at head); a transaction-level lock, released at commit.
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    # No SQLite pragmas here on purpose: with foreign keys on, batch mode's "copy the table,
    # drop the old one" would cascade-delete the rows that reference it.
    from app.db.session import ensure_sqlite_folder

    url = database_url()
    ensure_sqlite_folder(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
