"""The rate limits with their shared storage (Redis) down: a Redis URL nothing listens on.

Password checks fail closed (503 `rate_limit_unavailable` with `Retry-After`, before any hash);
refresh fails open; everything else is served; `/health` says so (200, `"degraded"`). The same
with a real redis-server stopped mid-test: tests/integration/test_replicas.py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from limits.errors import StorageError

from app.core.config import Settings
from app.core.ratelimit import LimiterUnavailable, LoginLimits, RateLimiter, storage_kind
from tests.support.auth import TEST_USER_PASSWORD, auth_for

LOGIN = "/api/v1/auth/login"

RULES = LoginLimits.parse(
    user_ip_failures="5/minute",
    ip_failures="5/minute",
    user_failures="5/hour",
    successes="5/minute",
)


def _dead_redis() -> str:
    """A Redis URL on a loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}"


@pytest.fixture
async def app_without_redis(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Settings]
) -> FastAPI:
    settings = make_settings(RATE_LIMIT_STORAGE_URI=_dead_redis())
    application: FastAPI = await make_unit_app(settings)
    return application


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_storage_kind() -> None:
    assert storage_kind("memory://") == "memory"
    assert storage_kind("redis://r:6379/0") == "redis"
    assert storage_kind("async+redis://r:6379") == "redis"
    assert storage_kind("rediss://r:6380") == "redis"
    assert storage_kind("redis+unix:///run/redis.sock") == "redis"
    assert not RateLimiter("memory://").shared
    assert RateLimiter("async+redis://127.0.0.1:1").shared


async def test_the_limiter_says_unavailable() -> None:
    limiter = RateLimiter(_dead_redis())
    assert "redis" in (await limiter.check() or "")
    with pytest.raises(LimiterUnavailable):
        await limiter.hit(RateLimiter.parse("5/minute"), "k")
    with pytest.raises(LimiterUnavailable):
        await limiter.admit_login(RULES, ip="a", user="u", wait=0)
    # Nothing is left reserved: the in-flight count is untouched by a refused admission.
    assert not limiter._in_flight
    await limiter.close()


async def test_an_admitted_attempt_ends_even_when_the_storage_goes_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A login admitted while Redis answered keeps its answer when Redis goes before it is
    counted: the count is dropped (and logged), the reservation ends."""
    limiter = RateLimiter("memory://")
    attempt = await limiter.admit_login(RULES, ip="a", user="u", wait=0)
    assert attempt.decision.allowed
    assert limiter._in_flight

    async def down(*_: Any, **__: Any) -> Any:
        raise StorageError(ConnectionError("gone"))

    monkeypatch.setattr(limiter.strategy, "hit", down)
    await attempt.failed()
    assert not limiter._in_flight
    await limiter.close()


async def test_logins_fail_closed_everything_else_is_served(app_without_redis: FastAPI) -> None:
    auth = await auth_for(app_without_redis)
    async with await _client(app_without_redis) as http:
        for body in (
            {"username": "test-viewer", "password": TEST_USER_PASSWORD},  # the right one too
            {"username": "test-viewer", "password": "wrong-password-1"},
        ):
            reply = await http.post(LOGIN, json=body)
            assert reply.status_code == 503, reply.text
            assert reply.json()["code"] == "rate_limit_unavailable"
            assert reply.headers["Retry-After"] == "5"
            assert reply.json()["request_id"]
        form = {"username": "test-viewer", "password": TEST_USER_PASSWORD}
        assert (await http.post("/api/v1/auth/token", data=form)).status_code == 503
        # A password change checks a password: refused the same way, nothing changed.
        change = {"current_password": TEST_USER_PASSWORD, "new_password": "another-password-9"}
        reply = await http.put(
            "/api/v1/auth/me/password", json=change, headers=auth.headers("viewer")
        )
        assert reply.status_code == 503
        # Tokens already issued keep working.
        me = await http.get("/api/v1/auth/me", headers=auth.headers("viewer"))
        assert me.status_code == 200
        assert me.json()["username"] == "test-viewer"
        assert (await http.get("/health/live")).status_code == 200


async def test_refresh_fails_open(app_without_redis: FastAPI) -> None:
    from app.auth import service

    settings = app_without_redis.state.settings
    await auth_for(app_without_redis)
    async with app_without_redis.state.db_sessionmaker() as session:
        pair = await service.login(
            session, settings, username="test-operator", password=TEST_USER_PASSWORD
        )
    async with await _client(app_without_redis) as http:
        reply = await http.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
        assert reply.status_code == 200, reply.text
        assert reply.json()["access_token"]


async def test_health_shows_redis_down_without_failing(app_without_redis: FastAPI) -> None:
    async with await _client(app_without_redis) as http:
        reply = await http.get("/health")
    body = reply.json()
    # LXD (mocked) answers: the replica serves, so no 503; the body says what is missing.
    assert reply.status_code == 200
    assert body["status"] == "degraded"
    assert body["lxd"]["status"] == "ok"
    assert body["rate_limits"]["status"] == "unavailable"
    assert body["rate_limits"]["storage"] == "redis"
    assert "redis" in body["rate_limits"]["reason"]


async def test_health_has_no_rate_limits_entry_in_memory(unit_client: httpx.AsyncClient) -> None:
    body = (await unit_client.get("/health")).json()
    assert "rate_limits" not in body
    assert body["status"] == "ok"
