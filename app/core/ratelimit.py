"""Rate limits for login and refresh, on the `limits` package's async strategies.

Logins are held to what a brute force needs, not to logging in (`RateLimiter.admit_login`):
FAILED attempts are counted per client address and per (username, address), and per username
from every address that is not one the user logged in from lately (so nobody elsewhere can lock
a user out of its own address, while a guess spread over many addresses stays bounded).
Successful logins only count against their own, generous per-address limit. Every limit is
checked before the password is hashed, and attempts still in flight count as failures, so a
burst of concurrent guesses cannot slip past a limit (within one process: with R replicas a
burst can reach at most R times a limit).

Storage is `memory://` (one process) by default; `RATE_LIMIT_STORAGE_URI=redis://host:6379`
shares the counters between replicas (the `async+` scheme is added when missing). Moving
window: a burst cannot double up across a window edge.

When the shared storage cannot be reached, every call here raises `LimiterUnavailable` (after
at most `STORAGE_TIMEOUT` seconds), except the counting of an attempt already decided, which is
logged and dropped: the caller chooses to fail closed (logins: the limit is what stands between a
password guesser and the user store) or open (refresh: its tokens are signed, nothing to guess).

The client IP is the peer address, or the first untrusted address in `X-Forwarded-For`
(read from the right) when the peer is one of `FORWARDED_ALLOW_IPS` (IPs and CIDRs,
comma-separated; `*` trusts any peer). A client can put anything in that header, so it is only
believed when a trusted proxy added it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import limits
import structlog
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# How long a (user, address) pair stays "known" after a successful login there: known pairs are
# not held to the per-username limit, which attackers elsewhere can spend.
KNOWN_ADDRESS = limits.RateLimitItemPerDay(1, 30)
# How long an attempt may wait for attempts in flight at the same counters to be decided.
ADMISSION_WAIT_SECONDS = 5.0
# The longest a shared storage (Redis) may take to connect or answer before it counts as down.
STORAGE_TIMEOUT = 2.0

log = structlog.get_logger(__name__)


class LimiterUnavailable(Exception):
    """The shared rate-limit storage (Redis) did not answer."""


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        entries = [item.strip() for item in spec.split(",") if item.strip()]
        self.any = "*" in entries
        self.networks: list[IPNetwork] = []
        self.names: set[str] = set()  # e.g. "unix:" peers or host names uvicorn may report
        for entry in entries:
            if entry == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)

    def __contains__(self, host: str) -> bool:
        if self.any:
            return True
        if host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def client_ip(peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies) -> str:
    """The address to count requests against."""
    host = peer or "unknown"
    if host not in trusted:
        return host
    forwarded = headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    # Every hop is a trusted proxy: the leftmost is as close to the client as we can get.
    return hops[0] if hops else host


def storage_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


def storage_kind(uri: str) -> str:
    """`memory`, `redis`, ...: the scheme without `async+` and its variants (`rediss`)."""
    scheme = storage_uri(uri).removeprefix("async+").split(":", 1)[0].split("+", 1)[0]
    return {"rediss": "redis", "valkeys": "valkey"}.get(scheme, scheme)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0
    by: str = ""  # the counter that refused


class RateLimiter:
    """One per app (made in the lifespan). `hit()` counts one attempt against a limit."""

    def __init__(self, uri: str) -> None:
        self.kind = storage_kind(uri)
        self.shared = self.kind != "memory"
        # Storage errors come wrapped (`StorageError`) whatever the client library; a Redis that
        # hangs is down after STORAGE_TIMEOUT instead of holding every login.
        options: dict[str, Any] = {"wrap_exceptions": True}
        if self.kind in {"redis", "valkey"}:
            options.update(connect_timeout=STORAGE_TIMEOUT, stream_timeout=STORAGE_TIMEOUT)
        self.storage: Any = storage_from_string(storage_uri(uri), **options)
        self.strategy = MovingWindowRateLimiter(self.storage)
        # Login attempts admitted and not yet decided, per counter key (this process only).
        self._in_flight: Counter[str] = Counter()
        self._login_changed = asyncio.Condition()

    @staticmethod
    def parse(limit: str) -> limits.RateLimitItem:
        return limits.parse(limit)

    async def check(self) -> str | None:
        """None when the storage answers, else why not (for `/health`)."""
        if not self.shared:
            return None
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT):
                healthy = await self.storage.check()
        except (TimeoutError, StorageError, OSError) as exc:
            return f"{self.kind} did not answer: {exc or type(exc).__name__}"
        return None if healthy else f"{self.kind} is unreachable"

    async def hit(self, item: limits.RateLimitItem, *key: str) -> Decision:
        with _unavailable():
            if await self.strategy.hit(item, *key):
                return Decision(allowed=True)
            stats = await self.strategy.get_window_stats(item, *key)
        return Decision(
            allowed=False, retry_after=max(1, math.ceil(stats.reset_time - time.time()))
        )

    async def admit_login(
        self, rules: LoginLimits, *, ip: str, user: str, wait: float = ADMISSION_WAIT_SECONDS
    ) -> LoginAttempt:
        """Admit one login attempt (or password check) before the password is hashed, or
        refuse it: `attempt.decision`. An admitted attempt must end with `succeeded()`,
        `failed()` or `abandoned()`. When only attempts still in flight stand in the way, wait
        up to `wait` seconds for them to be decided (a CI burst from one address gets in)."""
        # Quoted: a `/` in a name must not make two keys one.
        ip, user = quote(ip, safe=""), quote(user, safe="")
        attempt = LoginAttempt(self, rules, ip=ip, user=user)
        deadline = asyncio.get_running_loop().time() + wait
        async with self._login_changed:
            with _unavailable():
                known = await self._known(rules, ip, user)
            attempt.counters = rules.counters(ip=ip, user=user, known=known)
            while True:
                with _unavailable():
                    decision, busy = await self._check(attempt.counters)
                if decision.allowed:
                    self._in_flight.update(_gates(attempt.counters))
                    attempt.admitted = True
                    return attempt
                timeout = deadline - asyncio.get_running_loop().time()
                if not busy or timeout <= 0:
                    attempt.decision = decision
                    return attempt
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._login_changed.wait(), timeout)

    async def _known(self, rules: LoginLimits, ip: str, user: str) -> bool:
        stats = await self.strategy.get_window_stats(rules.known, "login-known", user, ip)
        return stats.remaining < 1

    async def _check(self, counters: tuple[Counted, ...]) -> tuple[Decision, bool]:
        """(decision, busy): busy when only attempts in flight make it a refusal."""
        counters = tuple(counter for counter in counters if counter.gate)
        stats = await asyncio.gather(
            *(self.strategy.get_window_stats(c.item, *c.identifiers) for c in counters)
        )
        now = time.time()
        spent = [
            (counter, stat)
            for counter, stat in zip(counters, stats, strict=True)
            if stat.remaining < 1
        ]
        if spent:
            retry_after = max(max(1, math.ceil(stat.reset_time - now)) for _, stat in spent)
            return Decision(allowed=False, retry_after=retry_after, by=spent[0][0].name), False
        for counter, stat in zip(counters, stats, strict=True):
            if stat.remaining - self._in_flight[counter.key] < 1:
                return Decision(allowed=False, retry_after=1, by=counter.name), True
        return Decision(allowed=True), False

    async def _end_login(self, attempt: LoginAttempt, outcome: str) -> None:
        async with self._login_changed:
            try:
                # Counted before the attempt leaves the in-flight set: the next check sees it.
                for counter in attempt.counters:
                    if counter.counts == outcome:
                        await self.strategy.hit(counter.item, *counter.identifiers)
                if outcome == "success":
                    # Refreshed, never reset: only a success at this very (user, address) pair
                    # touches it, and the failure counters stay as they are.
                    known = ("login-known", attempt.user, attempt.ip)
                    await self.strategy.clear(attempt.rules.known, *known)
                    await self.strategy.hit(attempt.rules.known, *known)
            except (StorageError, TimeoutError) as exc:
                # The attempt is decided already (its answer stands); the storage went away
                # while it ran, and the next attempt is refused until it is back.
                log.warning(
                    "ratelimit.unavailable", during="count", outcome=outcome, error=str(exc)
                )
            finally:
                keys = _gates(attempt.counters)
                self._in_flight.subtract(keys)
                for key in keys:
                    if self._in_flight[key] <= 0:
                        del self._in_flight[key]
                self._login_changed.notify_all()

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        # The in-memory storage keeps an expiry task; do not leave it pending at shutdown.
        timer = getattr(self.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Storage failures (and timeouts) as `LimiterUnavailable`."""
    try:
        yield
    except (StorageError, TimeoutError) as exc:
        raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc


def _gates(counters: tuple[Counted, ...]) -> list[str]:
    """The counters an attempt in flight reserves a place in: the failure limits (it may turn
    out a failure). The success limit is only refused once spent."""
    return [counter.key for counter in counters if counter.gate and counter.counts == "failure"]


# --- logins ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counted:
    """One counter a login attempt is held to."""

    name: str  # for logs: ip, user_ip, user, success
    item: limits.RateLimitItem
    identifiers: tuple[str, ...]
    counts: str  # the outcome counted here: "failure" or "success"
    gate: bool = True  # False: counted, but does not refuse this attempt

    @property
    def key(self) -> str:
        return str(self.item.key_for(*self.identifiers))


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed attempts per (username, address), per address and per username (from every
    address but the known ones); successful logins per address."""

    user_ip_failures: limits.RateLimitItem
    ip_failures: limits.RateLimitItem
    user_failures: limits.RateLimitItem
    successes: limits.RateLimitItem
    known: limits.RateLimitItem = KNOWN_ADDRESS

    @classmethod
    def parse(
        cls, *, user_ip_failures: str, ip_failures: str, user_failures: str, successes: str
    ) -> LoginLimits:
        return cls(
            *(limits.parse(v) for v in (user_ip_failures, ip_failures, user_failures, successes))
        )

    def counters(self, *, ip: str, user: str, known: bool) -> tuple[Counted, ...]:
        return (
            Counted("ip", self.ip_failures, ("login-failed", "ip", ip), "failure"),
            Counted(
                "user_ip", self.user_ip_failures, ("login-failed", "user-ip", user, ip), "failure"
            ),
            # From an address the user logged in from lately, attempts are not held to the
            # per-username limit (they still count towards it).
            Counted(
                "user", self.user_failures, ("login-failed", "user", user), "failure", not known
            ),
            Counted("success", self.successes, ("login-ok", "ip", ip), "success"),
        )


@dataclass(slots=True)
class LoginAttempt:
    limiter: RateLimiter
    rules: LoginLimits
    ip: str
    user: str
    decision: Decision = Decision(allowed=True)
    counters: tuple[Counted, ...] = ()
    admitted: bool = False

    async def _end(self, outcome: str) -> None:
        if self.admitted:
            self.admitted = False
            await self.limiter._end_login(self, outcome)

    async def succeeded(self) -> None:
        await self._end("success")

    async def failed(self) -> None:
        await self._end("failure")

    async def abandoned(self) -> None:
        """Neither (an error on the way, a client gone): only the reservation ends."""
        await self._end("abandoned")
