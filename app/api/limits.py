"""The rate limits of the auth routes, as dependencies: `LoginRateLimit` (login, the token form
and a password change) and `RefreshRateLimit`.

With the shared storage (Redis) down, password checks fail closed (503 `rate_limit_unavailable`:
without the counters, replicas would let a guesser try without bound) and refresh fails open (a
refresh token is signed and single use, there is nothing to guess; refusing it would log every
user out when their access token expires). Nothing else uses the limiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Annotated

import structlog
from fastapi import Depends, Request

from app.auth.errors import (
    InvalidCredentialsError,
    RateLimitedError,
    RateLimitUnavailableError,
    WrongPasswordError,
)
from app.core.config import Settings
from app.core.ratelimit import (
    LimiterUnavailable,
    LoginLimits,
    RateLimiter,
    TrustedProxies,
    client_ip,
)
from app.db.crud import username_key

log = structlog.get_logger(__name__)


def _client_ip(request: Request) -> str:
    settings: Settings = request.app.state.settings
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers, TrustedProxies(settings.FORWARDED_ALLOW_IPS))


@dataclass(frozen=True, slots=True)
class LoginGuard:
    """Holds a password check (login, password change) to the login limits: failures per
    address, per (username, address) and per username; successes per address. Refused before
    the password is hashed; the outcome is counted once the service has decided it."""

    limiter: RateLimiter
    rules: LoginLimits
    ip: str

    @asynccontextmanager
    async def attempt(self, username: str) -> AsyncIterator[None]:
        try:
            attempt = await self.limiter.admit_login(
                self.rules, ip=self.ip, user=username_key(username)
            )
        except LimiterUnavailable as exc:
            log.warning("ratelimit.unavailable", scope="login", action="refused", error=str(exc))
            raise RateLimitUnavailableError() from exc
        if not attempt.decision.allowed:
            log.info("auth.rate_limited", scope="login", by=attempt.decision.by)
            raise RateLimitedError(attempt.decision.retry_after)
        try:
            yield
        except (InvalidCredentialsError, WrongPasswordError):
            await attempt.failed()
            raise
        except BaseException:
            await attempt.abandoned()
            raise
        await attempt.succeeded()


@cache
def _login_limits(pair: str, ip: str, user: str, successes: str) -> LoginLimits:
    return LoginLimits.parse(
        user_ip_failures=pair, ip_failures=ip, user_failures=user, successes=successes
    )


async def login_rate_limit(request: Request) -> LoginGuard:
    settings: Settings = request.app.state.settings
    rules = _login_limits(
        settings.RATE_LIMIT_LOGIN,
        settings.RATE_LIMIT_LOGIN_IP,
        settings.RATE_LIMIT_LOGIN_USER,
        settings.RATE_LIMIT_LOGIN_SUCCESS,
    )
    return LoginGuard(limiter=request.app.state.rate_limiter, rules=rules, ip=_client_ip(request))


async def refresh_rate_limit(request: Request) -> None:
    """Refresh attempts per client address (`RATE_LIMIT_REFRESH`)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    item = RateLimiter.parse(request.app.state.settings.RATE_LIMIT_REFRESH)
    try:
        decision = await limiter.hit(item, "refresh", "ip", _client_ip(request))
    except LimiterUnavailable as exc:
        log.warning("ratelimit.unavailable", scope="refresh", action="allowed", error=str(exc))
        return
    if not decision.allowed:
        log.info("auth.rate_limited", scope="refresh", by="ip")
        raise RateLimitedError(decision.retry_after)


LoginRateLimit = Annotated[LoginGuard, Depends(login_rate_limit)]
RefreshRateLimit = Annotated[None, Depends(refresh_rate_limit)]
