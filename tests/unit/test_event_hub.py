"""The event relay hub against a fake LXD event stream (a `websockets` server on a unix socket
that can be stopped and restarted): sharing, fan-out, slow subscribers, reconnects, secrets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.errors import LXDUnavailable
from app.lxd import LXDClient
from app.services.events import EventHub, parse_types, scrub_event
from tests.support.fake_lxd import FakeEventStream, event
from tests.support.waiting import wait_until


@pytest.fixture
async def lxd_events(tmp_path: Path) -> AsyncIterator[FakeEventStream]:
    fake = FakeEventStream(tmp_path / "lxd.socket")
    await fake.start()
    try:
        yield fake
    finally:
        if fake.server is not None:
            await fake.stop()


@pytest.fixture
async def make_hub(
    make_settings: Callable[..., Settings], lxd_events: FakeEventStream
) -> AsyncIterator[Callable[..., EventHub]]:
    made: list[tuple[EventHub, LXDClient]] = []

    def build(**options: Any) -> EventHub:
        lxd = LXDClient(make_settings(LXD_SOCKET_PATH=str(lxd_events.path), LXD_TIMEOUT=5))
        hub = EventHub(lxd, **{"backoff_initial": 0.05, "backoff_max": 0.2, **options})
        made.append((hub, lxd))
        return hub

    yield build
    for hub, lxd in made:
        await hub.close()
        await lxd.close()


async def test_subscribers_share_one_upstream_per_project_and_types(
    make_hub: Callable[..., EventHub], lxd_events: FakeEventStream
) -> None:
    hub = make_hub()
    async with (
        hub.subscribe(project="default", types=["operation", "lifecycle"]) as one,
        hub.subscribe(project="default", types=["lifecycle", "operation"]) as two,
    ):
        assert lxd_events.total_connects == 1
        assert "type=lifecycle%2Coperation" in lxd_events.requests[0]
        assert "project=default" in lxd_events.requests[0]
        await lxd_events.send(event(1))
        assert json.loads(await asyncio.wait_for(one.get(), 2))["metadata"]["n"] == 1  # type: ignore[arg-type]
        assert json.loads(await asyncio.wait_for(two.get(), 2))["metadata"]["n"] == 1  # type: ignore[arg-type]
        (upstream,) = hub.state()["upstreams"]
        assert upstream["subscribers"] == 2
        assert upstream["connects"] == 1
        async with hub.subscribe(project="other", types=["lifecycle"]):
            assert lxd_events.total_connects == 2
            assert len(hub.state()["upstreams"]) == 2
        await wait_until(lambda: len(lxd_events.connections) == 1)
    assert hub.state() == {"upstreams": []}
    await wait_until(lambda: not lxd_events.connections)


async def test_events_pass_through_unchanged(
    make_hub: Callable[..., EventHub], lxd_events: FakeEventStream
) -> None:
    hub = make_hub()
    async with hub.subscribe(project="default", types=["lifecycle"]) as sub:
        text = event(7, pad=10) + " "  # even the formatting of LXD's frame is kept
        await lxd_events.send(text)
        assert await asyncio.wait_for(sub.get(), 2) == text


async def test_slow_subscriber_is_cut_without_delaying_the_fast_one(
    make_hub: Callable[..., EventHub], lxd_events: FakeEventStream
) -> None:
    hub = make_hub(queue_size=50)
    delays: list[float] = []
    count = 500

    async def consume(sub: Any) -> None:
        for _ in range(count):
            text = await sub.get()
            delays.append(time.monotonic() - json.loads(text)["metadata"]["sent"])

    async with (
        hub.subscribe(project="default", types=["lifecycle"]) as fast,
        hub.subscribe(project="default", types=["lifecycle"]) as slow,
    ):
        reader = asyncio.create_task(consume(fast))
        for n in range(count):
            await lxd_events.send(event(n))
            if n % 20 == 0:
                await asyncio.sleep(0)  # a stream, not one burst
        await asyncio.wait_for(reader, 10)
        assert slow.cut.is_set()
        assert not fast.cut.is_set()
        assert slow.queue.qsize() == 50  # it stopped taking events when cut
    assert len(delays) == count
    assert max(delays) < 0.5
    assert sorted(delays)[int(count * 0.99)] < 0.1


async def test_restarted_upstream_reconnects_and_subscribers_stay(
    make_hub: Callable[..., EventHub], lxd_events: FakeEventStream
) -> None:
    hub = make_hub()
    async with hub.subscribe(project="default", types=["lifecycle"]) as sub:
        await lxd_events.send(event(1))
        assert json.loads(await asyncio.wait_for(sub.get(), 2))["metadata"]["n"] == 1  # type: ignore[arg-type]
        await lxd_events.stop()
        await wait_until(lambda: not hub.state()["upstreams"][0]["connected"])
        await asyncio.sleep(0.3)  # a few failed attempts while LXD is away
        await lxd_events.start()
        await wait_until(lambda: hub.state()["upstreams"][0]["connected"])
        assert hub.state()["upstreams"][0]["connects"] == 2
        assert hub.state()["upstreams"][0]["subscribers"] == 1
        await lxd_events.send(event(2))
        assert json.loads(await asyncio.wait_for(sub.get(), 2))["metadata"]["n"] == 2  # type: ignore[arg-type]
        assert not sub.cut.is_set()


async def test_first_subscriber_hears_that_lxd_is_away(
    make_hub: Callable[..., EventHub], lxd_events: FakeEventStream
) -> None:
    hub = make_hub()
    await lxd_events.stop()
    with pytest.raises(LXDUnavailable):
        async with hub.subscribe(project="default", types=["lifecycle"]):
            pass
    assert hub.state() == {"upstreams": []}


async def test_close_ends_every_subscription(
    make_hub: Callable[..., EventHub], lxd_events: FakeEventStream
) -> None:
    hub = make_hub()
    async with hub.subscribe(project="default", types=["lifecycle"]) as sub:
        await lxd_events.send(event(1))
        await wait_until(lambda: sub.queue.qsize() == 1)
        await hub.close()
        assert await asyncio.wait_for(sub.get(), 2) is None
    await wait_until(lambda: not lxd_events.connections)


def test_parse_types() -> None:
    assert parse_types(None) == ("lifecycle", "logging", "operation")
    assert parse_types("operation, lifecycle") == ("lifecycle", "operation")
    assert parse_types("operation,operation") == ("operation",)
    with pytest.raises(ValueError, match="unknown event type"):
        parse_types("operation,bogus")


def test_scrub_removes_secrets_only() -> None:
    plain = event(1)
    assert scrub_event(plain) is plain
    exec_op = {
        "type": "operation",
        "metadata": {
            "id": "x",
            "class": "websocket",
            "metadata": {"command": ["sh"], "fds": {"0": "s0", "control": "sc"}},
        },
    }
    cleaned = json.loads(scrub_event(json.dumps(exec_op)))
    assert cleaned["metadata"]["metadata"] == {"command": ["sh"]}
    token_op = {"type": "operation", "metadata": {"class": "token", "metadata": {"secret": "t"}}}
    assert json.loads(scrub_event(json.dumps(token_op)))["metadata"]["metadata"] == {
        "secret": "[REDACTED]"
    }
    logging_event = {
        "type": "logging",
        "metadata": {
            "message": "Handling API request",
            "context": {"url": "/1.0/operations/x/websocket?secret=abc123&x=1"},
        },
    }
    text = scrub_event(json.dumps(logging_event))
    assert "abc123" not in text
    assert "/websocket?secret=[REDACTED]&x=1" in text
