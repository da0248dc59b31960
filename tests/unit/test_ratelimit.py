"""Rate limits on login and refresh. Logins: failures per (username, address), per address and
per username (known addresses exempt), successes per address; refused before any password is
hashed, 429 in the error shape with `Retry-After`. Refresh: per address. X-Forwarded-For is
believed only from trusted proxies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.auth import service as auth_service
from app.core.config import Settings
from app.core.ratelimit import (
    LoginAttempt,
    LoginLimits,
    RateLimiter,
    TrustedProxies,
    client_ip,
    storage_uri,
)
from tests.support.auth import TEST_USER_PASSWORD, auth_for

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
PASSWORD = "/api/v1/auth/me/password"


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


# --- login limits in the limiter ---------------------------------------------------------------
RULES = LoginLimits.parse(
    user_ip_failures="2/minute",
    ip_failures="3/minute",
    user_failures="3/hour",
    successes="2/minute",
)


async def _admit(limiter: RateLimiter, ip: str, user: str = "x") -> LoginAttempt:
    return await limiter.admit_login(RULES, ip=ip, user=user, wait=0)


async def test_only_failures_count_against_the_failure_limits() -> None:
    limiter = RateLimiter("memory://")
    for _ in range(2):
        attempt = await _admit(limiter, "a")
        assert attempt.decision.allowed
        await attempt.succeeded()
    # Two successes spent the success limit, and nothing else.
    assert (await _admit(limiter, "a")).decision.by == "success"
    for _ in range(2):
        attempt = await _admit(limiter, "b")
        await attempt.failed()
    refused = await _admit(limiter, "b")
    assert (refused.decision.allowed, refused.decision.by) == (False, "user_ip")
    assert 1 <= refused.decision.retry_after <= 60
    assert (await _admit(limiter, "b", "y")).decision.allowed
    await limiter.close()


async def test_an_abandoned_attempt_counts_nothing() -> None:
    limiter = RateLimiter("memory://")
    for _ in range(5):
        attempt = await _admit(limiter, "a")
        assert attempt.decision.allowed
        await attempt.abandoned()
        await attempt.failed()  # a second ending is ignored
    assert (await _admit(limiter, "a")).decision.allowed
    await limiter.close()


async def test_attempts_in_flight_count_as_failures_and_later_ones_wait() -> None:
    limiter = RateLimiter("memory://")
    first = [await _admit(limiter, "a", f"u{n}") for n in range(3)]
    assert all(attempt.decision.allowed for attempt in first)
    # Three in flight at a 3/minute address: a fourth may not start (it could be a 4th failure).
    busy = await _admit(limiter, "a", "u9")
    assert (busy.decision.allowed, busy.decision.by, busy.decision.retry_after) == (
        False,
        "ip",
        1,
    )
    # ... unless it waits: once one of them succeeds, it gets in.
    waiting = asyncio.create_task(limiter.admit_login(RULES, ip="a", user="u9", wait=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await first[0].succeeded()
    assert (await waiting).decision.allowed
    # Once the others fail, the address is spent, and nothing waits for that.
    for attempt in first[1:]:
        await attempt.failed()
    await (await waiting).failed()
    spent = await limiter.admit_login(RULES, ip="a", user="u10", wait=5)
    assert (spent.decision.allowed, spent.decision.by) == (False, "ip")
    assert spent.decision.retry_after > 1
    await limiter.close()


async def test_a_known_address_is_not_held_to_the_per_username_limit() -> None:
    limiter = RateLimiter("memory://")
    await (await _admit(limiter, "home")).succeeded()
    for ip in ("b", "c", "d"):
        await (await _admit(limiter, ip)).failed()
    assert (await _admit(limiter, "e")).decision.by == "user"
    assert (await _admit(limiter, "home")).decision.allowed
    await limiter.close()


async def test_a_slash_in_a_name_does_not_merge_two_keys() -> None:
    limiter = RateLimiter("memory://")
    for _ in range(2):
        await (await _admit(limiter, "b", "x/y")).failed()
    # ("x/y", "b") and ("x", "y/b") would both be "x/y/b" unquoted.
    rules = LoginLimits.parse(
        user_ip_failures="2/minute",
        ip_failures="9/minute",
        user_failures="9/hour",
        successes="9/minute",
    )
    assert (await limiter.admit_login(rules, ip="y/b", user="x", wait=0)).decision.allowed
    await limiter.close()


@pytest.mark.parametrize("value", ["often", "", "0/minute", "5/minute;10/hour"])
def test_a_rate_limit_setting_must_be_one_limit(
    make_settings: Callable[..., Any], value: str
) -> None:
    with pytest.raises(ValidationError, match="RATE_LIMIT_LOGIN_USER"):
        make_settings(RATE_LIMIT_LOGIN_USER=value)


# --- through the app -----------------------------------------------------------------------------
DEFAULT_LOGIN_LIMITS = {
    name: Settings.model_fields[name].default
    for name in (
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_LOGIN_IP",
        "RATE_LIMIT_LOGIN_USER",
        "RATE_LIMIT_LOGIN_SUCCESS",
    )
}


@pytest.fixture
async def limited(
    make_unit_app: Callable[..., Any],
    make_settings: Callable[..., Any],
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    overrides = {
        "RATE_LIMIT_LOGIN": "3/minute",
        "RATE_LIMIT_LOGIN_IP": "3/minute",
        "RATE_LIMIT_LOGIN_USER": "100/hour",
        "RATE_LIMIT_LOGIN_SUCCESS": "60/minute",
        "RATE_LIMIT_REFRESH": "2/minute",
    }
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


async def _ok(client: httpx.AsyncClient, username: str, ip: str) -> httpx.Response:
    return await _login(client, username, ip, TEST_USER_PASSWORD)


def _assert_429(reply: httpx.Response, within: int = 60) -> None:
    assert reply.status_code == 429, reply.text
    assert reply.json()["code"] == "rate_limited"
    assert set(reply.json()) == {"detail", "code", "request_id"}
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= within


@pytest.mark.parametrize("limited", [DEFAULT_LOGIN_LIMITS], indirect=True)
async def test_many_successful_logins_from_one_address_are_fine(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """A team behind one NAT, a CI job that logs in per run: with the default limits, eight
    logins in a minute from one address all get in (the old per-attempt limit said 429 at 6)."""
    _, client = limited
    for n in range(8):
        reply = await _ok(client, ("test-viewer", "test-operator")[n % 2], "203.0.113.90")
        assert reply.status_code == 200, (n, reply.text)


async def test_failures_from_one_address_stop_even_the_right_password_there(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    # Successes first: they do not count against the failure limit.
    for _ in range(2):
        assert (await _ok(client, "test-admin", "203.0.113.1")).status_code == 200
    for name in ("a1", "a2", "a3"):
        assert (await _login(client, name, "203.0.113.1")).status_code == 401
    _assert_429(await _login(client, "a4", "203.0.113.1"))
    # Even the right password waits.
    _assert_429(await _ok(client, "test-admin", "203.0.113.1"))
    # Another client is not affected.
    assert (await _ok(client, "test-admin", "203.0.113.2")).status_code == 200


@pytest.mark.parametrize("limited", [{"RATE_LIMIT_LOGIN_IP": "100/minute"}], indirect=True)
async def test_failures_are_limited_per_username_at_one_address(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    for _ in range(3):
        assert (await _login(client, "test-admin", "203.0.113.5")).status_code == 401
    # The same (case-insensitive) name at that address waits, even with the right password.
    _assert_429(await _login(client, "TEST-ADMIN", "203.0.113.5", TEST_USER_PASSWORD))
    # Another name at that address, and that name at another address, are not affected.
    assert (await _ok(client, "test-viewer", "203.0.113.5")).status_code == 200
    assert (await _ok(client, "test-admin", "203.0.113.6")).status_code == 200


async def test_failures_elsewhere_do_not_lock_a_user_out_of_its_own_address(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """Four (and more) wrong passwords for test-admin from B, C, D, E: test-admin still logs
    in from A, an address it has never logged in from before."""
    _, client = limited
    for n, ip in enumerate(("198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5")):
        for _ in range(2):
            reply = await _login(client, "test-admin", ip)
            assert reply.status_code == 401, (n, reply.text)
    assert (await _ok(client, "test-admin", "198.51.100.1")).status_code == 200


@pytest.mark.parametrize(
    "limited",
    [{"RATE_LIMIT_LOGIN": "100/minute", "RATE_LIMIT_LOGIN_USER": "4/hour"}],
    indirect=True,
)
async def test_a_guess_spread_over_many_addresses_is_bounded_per_username(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    # test-admin logged in from home once: home is a known address from now on.
    assert (await _ok(client, "test-admin", "192.0.2.1")).status_code == 200
    for n in range(4):
        assert (await _login(client, "Test-Admin", f"198.51.100.{10 + n}")).status_code == 401
    # A fifth address is refused for that name, even with the right password: the hour window.
    refused = await _ok(client, "test-admin", "198.51.100.20")
    _assert_429(refused, within=3600)
    assert int(refused.headers["Retry-After"]) > 60
    # Other names are not affected, and neither is test-admin at home.
    assert (await _ok(client, "test-viewer", "198.51.100.20")).status_code == 200
    assert (await _ok(client, "test-admin", "192.0.2.1")).status_code == 200


@pytest.mark.parametrize("limited", [{"RATE_LIMIT_LOGIN_SUCCESS": "3/minute"}], indirect=True)
async def test_successful_logins_have_their_own_per_address_limit(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    for _ in range(3):
        assert (await _ok(client, "test-viewer", "203.0.113.40")).status_code == 200
    _assert_429(await _ok(client, "test-viewer", "203.0.113.40"))
    assert (await _ok(client, "test-viewer", "203.0.113.41")).status_code == 200


async def test_a_refused_login_hashes_no_password(
    limited: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = limited
    for name in ("h1", "h2", "h3"):
        await _login(client, name, "203.0.113.60")
    calls: list[str] = []

    async def counting(password: str, hashed: str | None) -> tuple[bool, str | None]:
        calls.append(password)
        return False, None

    monkeypatch.setattr(auth_service, "verify_password", counting)
    _assert_429(await _ok(client, "test-admin", "203.0.113.60"))
    assert calls == []


async def test_a_burst_of_concurrent_guesses_gets_no_more_than_the_limit(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    replies = await asyncio.gather(
        *(_login(client, f"burst{n}", "203.0.113.70") for n in range(12))
    )
    assert sorted(reply.status_code for reply in replies) == [401] * 3 + [429] * 9


async def test_a_burst_of_concurrent_right_logins_all_get_in(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """Eight CI jobs start at once behind one address whose failure limit is 3: each waits
    for the ones in flight to be decided instead of being refused."""
    _, client = limited
    replies = await asyncio.gather(*(_ok(client, "test-viewer", "203.0.113.71") for _ in range(8)))
    assert [reply.status_code for reply in replies] == [200] * 8


@pytest.mark.parametrize("limited", [{"FORWARDED_ALLOW_IPS": "10.9.9.9"}], indirect=True)
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    for n in range(3):
        assert (await _login(client, f"u{n}", f"198.51.100.{n}")).status_code == 401
    _assert_429(await _login(client, "u9", "198.51.100.99"))


async def test_token_form_login_shares_the_login_limits(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = limited
    forwarded = {"X-Forwarded-For": "203.0.113.50"}
    form = {"username": "f1", "password": "whatever-pass"}
    for _ in range(2):
        reply = await client.post("/api/v1/auth/token", data=form, headers=forwarded)
        assert reply.status_code == 401
    await _login(client, "f2", "203.0.113.50")
    _assert_429(await client.post("/api/v1/auth/token", data=form, headers=forwarded))
    right = {"username": "test-admin", "password": TEST_USER_PASSWORD}
    _assert_429(await client.post("/api/v1/auth/token", data=right, headers=forwarded))


async def test_wrong_current_passwords_count_as_failed_logins(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = limited
    headers = (await auth_for(app)).headers("viewer")
    body = {"current_password": "not-the-password", "new_password": "a-new-password-1"}
    for _ in range(3):
        reply = await client.put(PASSWORD, json=body, headers=headers)
        assert reply.status_code == 400, reply.text
    _assert_429(await client.put(PASSWORD, json=body, headers=headers))
    # The same address cannot log in either until the window moves on.
    _assert_429(await _ok(client, "test-viewer", "127.0.0.1"))


async def test_refresh_is_limited_per_ip(limited: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = limited
    body = {"refresh_token": "not-a-token"}
    for _ in range(2):
        assert (await client.post(REFRESH, json=body)).status_code == 401
    _assert_429(await client.post(REFRESH, json=body))
    other = await client.post(REFRESH, json=body, headers={"X-Forwarded-For": "203.0.113.77"})
    assert other.status_code == 401
