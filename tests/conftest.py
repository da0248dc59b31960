"""Shared fixtures.

* `make_settings(**overrides)`: test settings (a fresh SQLite file, a strong JWT secret).
* `lxd_env`: the real LXD daemon for integration tests (see `tests/lxd_sandbox.py`).
* `settings`, `app`, `client`: for integration tests, parametrized over both connection modes
  (`local` = unix socket, `remote` = mTLS on 127.0.0.1). Unit tests build their own app with a
  mocked LXD transport (`unit_app`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.lxd_sandbox import LXDEnv, find_lxd

TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def tmp_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def make_settings(tmp_data: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_data}/{uuid.uuid4().hex}.db",
            "JWT_SECRET": TEST_JWT_SECRET,
            "LXD_SOCKET_PATH": str(tmp_data / "no-lxd.socket"),
            "LOG_LEVEL": "INFO",
            "RATE_LIMIT_LOGIN": "1000/minute",
            "RATE_LIMIT_REFRESH": "1000/minute",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


# --- the real daemon ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lxd_env() -> LXDEnv:
    """The real LXD for integration tests; skips (or fails with LXD_REQUIRED=1) without one."""
    env, reason = find_lxd()
    if env is None:
        if os.environ.get("LXD_REQUIRED") == "1":
            pytest.fail(f"LXD_REQUIRED=1 but no LXD daemon is available: {reason}")
        pytest.skip(f"no LXD daemon for integration tests: {reason}")
    return env


@pytest.fixture(scope="session", params=["local", "remote"])
def lxd_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def settings(lxd_env: LXDEnv, lxd_mode: str, make_settings: Callable[..., Settings]) -> Settings:
    if lxd_mode == "remote" and not lxd_env.remote_url:
        pytest.skip("the LXD under test has no HTTPS address (LXD_TEST_SOCKET without remote)")
    return make_settings(**lxd_env.settings_for(lxd_mode))


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=120
    ) as http:
        yield http
