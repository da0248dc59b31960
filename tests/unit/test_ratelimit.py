"""Rate limits on login and refresh: per client IP and per username, 429 in the error shape
with `Retry-After`, and X-Forwarded-For believed only from trusted proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.ratelimit import RateLimiter, TrustedProxies, client_ip, storage_uri
from tests.conftest import TEST_USER_PASSWORD, auth_for

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


# --- client IP -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "127.0.0.1", "", "127.0.0.1"),
        # An untrusted peer cannot pick its address by sending the header.
        ("127.0.0.1", "198.51.100.7", "203.0.113.9", "198.51.100.7"),
        # Read from the right: the first hop that is not one of our proxies is the client;
        # whatever the client wrote further left is ignored.
        ("10.0.0.0/8", "10.0.0.2", "1.1.1.1, 203.0.113.9, 10.0.0.5", "203.0.113.9"),
        ("10.0.0.0/8, 127.0.0.1", "127.0.0.1", "203.0.113.9,10.1.2.3", "203.0.113.9"),
        ("*", "192.0.2.1", "203.0.113.9", "203.0.113.9"),
        ("::1", "::1", "2001:db8::1", "2001:db8::1"),
        # Only proxies in the chain: the leftmost is as close as it gets.
        ("10.0.0.0/8", "10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),
    ],
)
def test_client_ip(trusted: str, peer: str, forwarded: str, expected: str) -> None:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    assert client_ip(peer, headers, TrustedProxies(trusted)) == expected


def test_trusted_proxies_parsing() -> None:
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8 ,, fd00::/8")
    assert "127.0.0.1" in proxies
    assert "10.200.1.1" in proxies
    assert "fd00::1" in proxies
    assert "11.0.0.1" not in proxies
    assert "not-an-ip" not in proxies
    assert "anything" in TrustedProxies("*")


def test_storage_uri_gets_the_async_scheme() -> None:
    assert storage_uri("memory://") == "async+memory://"
    assert storage_uri("redis://r:6379/0") == "async+redis://r:6379/0"
    assert storage_uri("async+redis://r:6379") == "async+redis://r:6379"


async def test_limiter_counts_and_reports_retry_after() -> None:
    limiter = RateLimiter("memory://")
    item = RateLimiter.parse("2/minute")
    assert (await limiter.hit(item, "k")).allowed
    assert (await limiter.hit(item, "k")).allowed
    refused = await limiter.hit(item, "k")
    assert not refused.allowed
    assert 1 <= refused.retry_after <= 60
    assert (await limiter.hit(item, "other")).allowed
    await limiter.close()


# --- through the app -----------------------------------------------------------------------------
@pytest.fixture
async def limited(
    make_unit_app: Callable[..., Any],
    make_settings: Callable[..., Any],
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    overrides = {"RATE_LIMIT_LOGIN": "3/minute", "RATE_LIMIT_REFRESH": "2/minute"}
    overrides.update(getattr(request, "param", {}))
    app = await make_unit_app(make_settings(**overrides))
    await auth_for(app)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield app, client


async def _login(
    client: httpx.AsyncClient,
    username: str,
    ip: str | None = None,
    password: str = "wrong-password",  # noqa: S107 - a test password
) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(
        LOGIN, json={"username": username, "password": password}, headers=headers
    )


def _assert_429(reply: httpx.Response) -> None:
    assert reply.status_code == 429
    assert reply.json()["code"] == "rate_limited"
    assert set(reply.json()) == {"detail", "code", "request_id"}
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= 60


async def test_login_is_limited_per_ip(limited: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = limited
    for name in ("a1", "a2", "a3"):
        assert (await _login(client, name, "203.0.113.1")).status_code == 401
    _assert_429(await _login(client, "a4", "203.0.113.1"))
    # Even the right password waits.
    _assert_429(await _login(client, "test-admin", "203.0.113.1", TEST_USER_PASSWORD))
    # Another client is not affected.
    assert (await _login(client, "a5", "203.0.113.2")).status_code == 401


async def test_login_is_limited_per_username(limited: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = limited
    for n in range(3):
        assert (await _login(client, "test-admin", f"203.0.113.{10 + n}")).status_code == 401
    # A fourth address does not help against the same (case-insensitive) name.
    _assert_429(await _login(client, "TEST-ADMIN", "203.0.113.20"))
    assert (await _login(client, "test-viewer", "203.0.113.21")).status_code == 401


@pytest.mark.parametrize("limited", [{"FORWARDED_ALLOW_IPS": "10.9.9.9"}], indirect=True)
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    for n in range(3):
        assert (await _login(client, f"u{n}", f"198.51.100.{n}")).status_code == 401
    _assert_429(await _login(client, "u9", "198.51.100.99"))


async def test_token_form_login_shares_the_login_limit(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    for name in ("f1", "f2", "f3"):
        await _login(client, name, "203.0.113.50")
    form = {"username": "f4", "password": "whatever-pass"}
    reply = await client.post(
        "/api/v1/auth/token", data=form, headers={"X-Forwarded-For": "203.0.113.50"}
    )
    _assert_429(reply)


async def test_refresh_is_limited_per_ip(limited: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = limited
    body = {"refresh_token": "not-a-token"}
    for _ in range(2):
        assert (await client.post(REFRESH, json=body)).status_code == 401
    _assert_429(await client.post(REFRESH, json=body))
    other = await client.post(REFRESH, json=body, headers={"X-Forwarded-For": "203.0.113.77"})
    assert other.status_code == 401


async def test_successful_logins_count_too(limited: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = limited
    for _ in range(3):
        ok = await _login(client, "test-viewer", "203.0.113.90", TEST_USER_PASSWORD)
        assert ok.status_code == 200
    _assert_429(await _login(client, "test-viewer", "203.0.113.90", TEST_USER_PASSWORD))
