"""Rate limits for login and refresh, on the `limits` package's async strategies.

Storage is `memory://` (one process) by default; `RATE_LIMIT_STORAGE_URI=redis://host:6379`
shares the counters between replicas (the `async+` scheme is added when missing). Moving
window: a burst cannot double up across a window edge.

The client IP is the peer address, or the first untrusted address in `X-Forwarded-For`
(read from the right) when the peer is one of `FORWARDED_ALLOW_IPS` (IPs and CIDRs,
comma-separated; `*` trusts any peer). A client can put anything in that header, so it is only
believed when a trusted proxy added it.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import limits
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0


class RateLimiter:
    """One per app (made in the lifespan). `hit()` counts one attempt against a limit."""

    def __init__(self, uri: str) -> None:
        self.storage: Any = storage_from_string(storage_uri(uri))
        self.strategy = MovingWindowRateLimiter(self.storage)

    @staticmethod
    def parse(limit: str) -> limits.RateLimitItem:
        return limits.parse(limit)

    async def hit(self, item: limits.RateLimitItem, *key: str) -> Decision:
        if await self.strategy.hit(item, *key):
            return Decision(allowed=True)
        stats = await self.strategy.get_window_stats(item, *key)
        return Decision(
            allowed=False, retry_after=max(1, math.ceil(stats.reset_time - time.time()))
        )

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        # The in-memory storage keeps an expiry task; do not leave it pending at shutdown.
        timer = getattr(self.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
