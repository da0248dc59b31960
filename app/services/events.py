"""The event relay hub: LXD's `/1.0/events` stream, shared by every subscriber.

One upstream LXD connection per (project, sorted types), opened for the first subscriber and
closed after the last. When LXD goes away the hub reconnects with backoff while subscribers stay
connected. Each subscriber has a bounded queue; one that cannot keep up is cut (its route closes
it with 1013) and never slows the others: fan-out only ever does `put_nowait`.

Events pass through as LXD sends them, with one exception: secrets are removed. Operation
events carry an exec or console operation's websocket secrets (`metadata.fds`) and a token
operation's `secret`; LXD's debug logging events quote websocket URLs with `?secret=`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.errors import LXDError, LXDUnavailable
from app.lxd import LXDClient, lxd_path

log = structlog.get_logger(__name__)

EVENT_TYPES = ("lifecycle", "logging", "operation")
DEFAULT_QUEUE_SIZE = 1024
_SECRET_IN_TEXT = re.compile(r"(secret=)[^&\s\"'\\]+")
REDACTED = "[REDACTED]"


def parse_types(raw: str | None) -> tuple[str, ...]:
    """`"operation,lifecycle"` -> `("lifecycle", "operation")`; all types when empty.
    ValueError names an unknown type."""
    if not raw:
        return EVENT_TYPES
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown event type(s) {', '.join(unknown)}: use {', '.join(EVENT_TYPES)}"
        )
    return tuple(sorted(wanted)) or EVENT_TYPES


def scrub_event(text: str) -> str:
    """The event without secrets; the text itself when it holds none (the common case)."""
    if '"fds"' not in text and "secret" not in text:
        return text
    try:
        event = json.loads(text)
    except ValueError:
        return _SECRET_IN_TEXT.sub(r"\1" + REDACTED, text)
    return json.dumps(_scrub(event), separators=(",", ":"))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (REDACTED if key == "secret" and isinstance(item, str) else _scrub(item))
            for key, item in value.items()
            if key != "fds"
        }
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str) and "secret=" in value:
        return _SECRET_IN_TEXT.sub(r"\1" + REDACTED, value)
    return value


class Subscriber:
    """One client of the relay: a bounded queue of event texts."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)
        self.cut = asyncio.Event()

    def offer(self, text: str) -> None:
        if self.cut.is_set():
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.cut.set()

    def end(self) -> None:
        """The hub is shutting down: wake the consumer with the end marker."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def get(self) -> str | None:
        """The next event text; None when the hub closed."""
        return await self.queue.get()


# The key of the upstream that carries every project's events (`?all-projects=true`): not a
# valid project name, so no project's upstream can share it.
ALL_PROJECTS = "*"


@dataclass
class _Upstream:
    project: str
    types: tuple[str, ...]
    subscribers: set[Subscriber] = field(default_factory=set)
    ready: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    connection: ClientConnection | None = None
    connects: int = 0
    relayed: int = 0


class EventHub:
    """Shared LXD event connections, fanned out to subscribers."""

    def __init__(
        self,
        lxd: LXDClient,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        backoff_initial: float = 0.5,
        backoff_max: float = 15.0,
    ) -> None:
        self.lxd = lxd
        self.queue_size = queue_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._upstreams: dict[tuple[str, tuple[str, ...]], _Upstream] = {}
        self._closed = False

    def state(self) -> dict[str, Any]:
        """What is open now: one entry per upstream LXD connection."""
        return {
            "upstreams": [
                {
                    "project": up.project,
                    "types": list(up.types),
                    "subscribers": len(up.subscribers),
                    "connected": up.connection is not None,
                    "connects": up.connects,
                    "relayed": up.relayed,
                }
                for up in self._upstreams.values()
            ]
        }

    @asynccontextmanager
    async def subscribe(self, *, project: str, types: Iterable[str]) -> AsyncIterator[Subscriber]:
        """Join the upstream for (project, types), opening it if needed (`ALL_PROJECTS`: every
        project's events, for a global viewer). The first subscriber
        waits for LXD to accept the connection (so it sees every event after this returns);
        LXD's refusal is raised as its typed error."""
        if self._closed:
            raise RuntimeError("the event hub is closed")
        key = (project, tuple(sorted(set(types))))
        upstream = self._upstreams.get(key)
        if upstream is None:
            upstream = _Upstream(project=key[0], types=key[1])
            upstream.ready = asyncio.get_running_loop().create_future()
            upstream.task = asyncio.create_task(self._run(upstream))
            self._upstreams[key] = upstream
        subscriber = Subscriber(self.queue_size)
        upstream.subscribers.add(subscriber)
        try:
            assert upstream.ready is not None
            await asyncio.shield(upstream.ready)
            yield subscriber
        finally:
            upstream.subscribers.discard(subscriber)
            if not upstream.subscribers and self._upstreams.get(key) is upstream:
                del self._upstreams[key]
                await self._stop(upstream)

    async def close(self) -> None:
        """Stop every upstream and end every subscription (shutdown)."""
        self._closed = True
        upstreams = list(self._upstreams.values())
        self._upstreams.clear()
        for upstream in upstreams:
            for subscriber in upstream.subscribers:
                subscriber.end()
            await self._stop(upstream)

    async def _stop(self, upstream: _Upstream) -> None:
        if upstream.task is not None:
            upstream.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upstream.task
        if upstream.ready is not None and not upstream.ready.done():
            # A subscriber still waiting for the first connection hears why, not a cancel.
            upstream.ready.set_exception(LXDUnavailable("The event relay is shutting down"))
            upstream.ready.exception()  # retrieved: no "never retrieved" warning if none waits

    async def _run(self, upstream: _Upstream) -> None:
        delay = self.backoff_initial
        params = {"type": ",".join(upstream.types)}
        if upstream.project == ALL_PROJECTS:
            params["all-projects"] = "true"
        else:
            params["project"] = upstream.project
        assert upstream.ready is not None
        while True:
            try:
                connection = await self.lxd.websocket(lxd_path("events"), params=params)
            except LXDError as exc:
                if not upstream.ready.done():
                    upstream.ready.set_exception(exc)
                    return
                log.warning("events.reconnect_failed", detail=exc.detail, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            upstream.connection = connection
            upstream.connects += 1
            if not upstream.ready.done():
                upstream.ready.set_result(None)
            else:
                log.info("events.reconnected", project=upstream.project, types=upstream.types)
            delay = self.backoff_initial
            started = time.monotonic()
            try:
                await self._pump(upstream, connection)
            finally:
                upstream.connection = None
                with contextlib.suppress(Exception):
                    await connection.close()
            # A connection that dropped at once must not turn into a tight reconnect loop.
            if time.monotonic() - started < self.backoff_initial:
                await asyncio.sleep(self.backoff_initial)
            log.warning("events.upstream_lost", project=upstream.project, types=upstream.types)

    @staticmethod
    async def _pump(upstream: _Upstream, connection: ClientConnection) -> None:
        try:
            async for message in connection:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                text = scrub_event(text)
                upstream.relayed += 1
                for subscriber in tuple(upstream.subscribers):
                    subscriber.offer(text)
        except ConnectionClosed:
            return
