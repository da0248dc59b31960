"""Shared fixtures.

* `make_settings(**overrides)`: test settings (a fresh SQLite file, a strong JWT secret).
* `lxd_env`: the real LXD daemon for integration tests (see `tests/support/lxd_sandbox.py`).
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
from tests.support.auth import TEST_JWT_SECRET, TEST_METRICS_TOKEN, AuthHelper, auth_for
from tests.support.fake_lxd import fake_lxd_handler
from tests.support.lxd_sandbox import LXDEnv, find_lxd


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
        return Settings(_env_file=None, **values)

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
    return make_settings(**lxd_env.settings_for(lxd_mode), METRICS_TOKEN=TEST_METRICS_TOKEN)


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


# --- auth helpers: users of each role in an app's database ------------------------------------
# `auth_headers(role="admin")` -> {"Authorization": "Bearer <access token>"} and
# `ws_token(role="admin")` -> "<access token>" (for `?token=`), for the users of
# `tests.support.auth`. They use `unit_app` when the test uses it (or `unit_client`), else the
# integration `app`. For an app of your own: `auth = await auth_for(my_app)`.
@pytest.fixture(scope="session")
async def app_auth(app: FastAPI) -> AuthHelper:
    return await auth_for(app)


def _auth_helper(request: pytest.FixtureRequest) -> AuthHelper:
    name = "unit_auth" if "unit_app" in request.fixturenames else "app_auth"
    helper: AuthHelper = request.getfixturevalue(name)
    return helper


@pytest.fixture
def auth_headers(request: pytest.FixtureRequest) -> Callable[..., dict[str, str]]:
    return _auth_helper(request).headers


@pytest.fixture
def ws_token(request: pytest.FixtureRequest) -> Callable[..., str]:
    return _auth_helper(request).token


# --- unit apps: no LXD, a mocked transport -----------------------------------------------------
@pytest.fixture
async def make_unit_app(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    """`await make_unit_app(settings=None, lxd_handler=None)` -> a started app (lifespan run,
    fresh SQLite) whose LXD is `httpx.MockTransport(lxd_handler or fake_lxd_handler)`."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def make(
            settings: Settings | None = None,
            lxd_handler: Callable[[httpx.Request], httpx.Response] | None = None,
        ) -> FastAPI:
            transport = httpx.MockTransport(lxd_handler or fake_lxd_handler)
            application = create_app(settings or make_settings(), lxd_transport=transport)
            await stack.enter_async_context(LifespanManager(application, startup_timeout=60))
            return application

        yield make


@pytest.fixture
async def unit_app(make_unit_app: Callable[..., Any]) -> FastAPI:
    application: FastAPI = await make_unit_app()
    return application


@pytest.fixture
async def unit_client(unit_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=unit_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def unit_auth(unit_app: FastAPI) -> AuthHelper:
    return await auth_for(unit_app)


@pytest.fixture
def unit_auth_headers(unit_auth: AuthHelper) -> Callable[..., dict[str, str]]:
    return unit_auth.headers


@pytest.fixture
def unit_ws_token(unit_auth: AuthHelper) -> Callable[..., str]:
    return unit_auth.token
