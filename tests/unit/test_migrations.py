"""Alembic: up and down, the models never drift from the migrated schema, the command line
takes its URL from the settings, and the app's engine turns the SQLite pragmas on.

PostgreSQL too when `TEST_POSTGRES_URL` (e.g. `postgresql+asyncpg://u:p@127.0.0.1/db`, an
empty database) is set; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from app.db.migrations import MIGRATION_LOCK_KEY, REPO_ROOT, downgrade_to, upgrade_to_head
from app.db.models import Base
from app.db.session import make_engine

APP_TABLES = {
    "users",
    "user_projects",
    "refresh_tokens",
    "revoked_access_tokens",
    "api_tokens",
    "audit_log",
    "audit_anchor",
}


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/nested/folder/store.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    return _postgres_url()


def _postgres_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set TEST_POSTGRES_URL to run the migrations against PostgreSQL")
    return url


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python *args` in the repository, output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _run(url: str, fn: Callable[[Connection], Any]) -> Any:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_and_no_drift(database_url: str) -> None:
    await anyio.to_thread.run_sync(upgrade_to_head, database_url)
    assert await _run(database_url, _tables) >= APP_TABLES
    assert await _run(database_url, _diffs) == []

    # Upgrading again is a no-op.
    await anyio.to_thread.run_sync(upgrade_to_head, database_url)

    await anyio.to_thread.run_sync(downgrade_to, database_url, "base")
    assert not (APP_TABLES & await _run(database_url, _tables))

    await anyio.to_thread.run_sync(upgrade_to_head, database_url)
    assert await _run(database_url, _diffs) == []
    await anyio.to_thread.run_sync(downgrade_to, database_url, "base")


async def test_postgres_replicas_migrate_one_after_the_other() -> None:
    """While another session holds the migration lock, `alembic upgrade head` waits for it (and
    is seen waiting in `pg_locks`); once it is free, the upgrade runs."""
    url = _postgres_url()
    key = {"key": MIGRATION_LOCK_KEY}
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND (classid::bigint << 32 | objid::bigint) = :key"
    )
    engine = make_engine(url)
    upgrade: subprocess.Popen[bytes] | None = None
    try:
        async with engine.connect() as holder:
            await holder.execute(text("SELECT pg_advisory_lock(:key)"), key)
            await holder.commit()
            upgrade = subprocess.Popen(
                [sys.executable, "-m", "alembic", "upgrade", "head"],
                cwd=REPO_ROOT,
                env={**os.environ, "DATABASE_URL": url},
            )
            with anyio.fail_after(60):
                while not (await holder.execute(waiting, key)).scalar():
                    assert upgrade.poll() is None, "the upgrade did not wait for the lock"
                    await anyio.sleep(0.1)
            assert upgrade.poll() is None
            await holder.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            await holder.commit()
        assert await anyio.to_thread.run_sync(lambda: upgrade.wait(60)) == 0
        assert await _run(url, _tables) >= APP_TABLES
    finally:
        if upgrade is not None and upgrade.poll() is None:
            upgrade.kill()
        await engine.dispose()
        await anyio.to_thread.run_sync(downgrade_to, url, "base")


async def test_sqlite_folder_is_created_and_pragmas_are_on(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade_to_head, url)
    assert (tmp_path / "nested" / "folder" / "store.db").is_file()

    def pragmas(connection: Connection) -> tuple[Any, Any]:
        fk = connection.execute(text("PRAGMA foreign_keys")).scalar()
        journal = connection.execute(text("PRAGMA journal_mode")).scalar()
        return fk, journal

    assert await _run(url, pragmas) == (1, "wal")


def test_alembic_command_takes_the_url_from_the_settings_and_logs_json(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    env = {**os.environ, "DATABASE_URL": url}
    done = _python("-m", "alembic", "upgrade", "head", env=env)
    assert done.returncode == 0, done.stderr
    # Its log lines are the app's JSON lines, not Alembic's plain text.
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines
    assert all(json.loads(line)["logger"].startswith("alembic") for line in lines), lines
    current = _python("-m", "alembic", "current", env=env)
    assert "(head)" in current.stdout


def test_the_apps_own_migration_logs_no_alembic_chatter(tmp_path: Path) -> None:
    """`python -m app`'s start in a fresh process (Alembic sets up its plugins once, when
    imported): the migration's lines, not a line per Alembic plugin."""
    script = (  # logging first, as `python -m app` does: Alembic's imports log too
        "from app.core.logging import configure_logging\n"
        "configure_logging('INFO')\n"
        "from app.db.migrations import upgrade_to_head\n"
        f"upgrade_to_head('sqlite+aiosqlite:///{tmp_path}/chatter.db')\n"
    )
    done = _python("-c", script)
    assert done.returncode == 0, done.stderr
    assert "Running upgrade" in done.stdout
    assert "setup plugin" not in done.stdout


async def test_the_app_starts_on_a_migrated_schema(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    app = await make_unit_app(make_settings(DATABASE_URL=url))
    assert await _run(url, _tables) >= APP_TABLES
    assert await _run(url, _diffs) == []
    assert app.state.db_engine is not None


async def test_project_roles_migration_keeps_users_and_downgrades_safely(
    database_url: str,
) -> None:
    """0001 -> 0002 keeps every user; `none` and bindings work after it; going back to 0001
    disables the users that had only project roles (they must not become global viewers)."""
    await anyio.to_thread.run_sync(upgrade_to_head, database_url)
    await anyio.to_thread.run_sync(downgrade_to, database_url, "0001")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    insert = text(
        "INSERT INTO users (id, username, username_key, password_hash, role, is_active, "
        "token_version, created_at, updated_at) "
        "VALUES (:id, :name, :name, 'x', :role, true, 0, :now, :now)"
    ).bindparams(now=now)

    def seed(connection: Connection) -> None:
        connection.execute(insert, {"id": 1, "name": "old-admin", "role": "admin"})
        connection.commit()

    def use_new_schema(connection: Connection) -> None:
        connection.execute(insert, {"id": 2, "name": "tenant", "role": "none"})
        connection.execute(
            text(
                "INSERT INTO user_projects (user_id, project, role, created_at) "
                "VALUES (2, 'p1', 'operator', :now)"
            ).bindparams(now=now)
        )
        connection.commit()

    def users(connection: Connection) -> list[tuple[Any, ...]]:
        rows = connection.execute(text("SELECT username, role, is_active FROM users ORDER BY id"))
        return [tuple(row) for row in rows]

    try:
        await _run(database_url, seed)
        await anyio.to_thread.run_sync(upgrade_to_head, database_url)
        assert await _run(database_url, users) == [("old-admin", "admin", True)]
        await _run(database_url, use_new_schema)
        await anyio.to_thread.run_sync(downgrade_to, database_url, "0001")
        assert await _run(database_url, users) == [
            ("old-admin", "admin", True),
            ("tenant", "viewer", False),
        ]
    finally:
        await anyio.to_thread.run_sync(downgrade_to, database_url, "base")
