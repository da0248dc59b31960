"""Bring the schema to Alembic's head from inside the app (the same as `alembic upgrade head`).

The lifespan runs this in a worker thread before serving, so `uvicorn app.main:app` alone
works. Alembic's `context` is process-global: a lock keeps two apps in one process (tests)
from migrating at the same moment. On PostgreSQL, `alembic/env.py` also takes an advisory lock
(`MIGRATION_LOCK_KEY`) so that replicas starting together migrate one after the other.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic.config import Config

from alembic import command

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = REPO_ROOT / "alembic.ini"

_lock = threading.Lock()
MIGRATION_LOCK_KEY = 0x6C78_645F_6170_6900  # "lxd_api" in ASCII; pg_advisory_xact_lock's key


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(database_url: str) -> None:
    with _lock:
        command.upgrade(alembic_config(database_url), "head")


def downgrade_to(database_url: str, revision: str = "base") -> None:
    with _lock:
        command.downgrade(alembic_config(database_url), revision)
