"""`WS /operations/ws` through uvicorn, against a fake LXD event stream: a client that reads too
slowly is closed with 1013 while a fast one gets every event; LXD restarting does not close
subscribers; bad queries are refused with their close codes."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.core.config import Settings
from app.services.events import EventHub
from tests.support.auth import auth_for
from tests.support.fake_lxd import FakeEventStream, event, fake_lxd_handler
from tests.support.lxd_replies import sync
from tests.support.waiting import wait_until


def lxd_handler(request: httpx.Request) -> httpx.Response:
    """Projects `default` and `other` exist; the rest is the shared fake."""
    if request.method == "GET" and request.url.path in {
        "/1.0/projects/default",
        "/1.0/projects/other",
    }:
        return sync({"name": "default"})
    return fake_lxd_handler(request)


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
async def served(
    make_unit_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    lxd_events: FakeEventStream,
) -> AsyncIterator[tuple[FastAPI, str]]:
    # The read model off: it would hold an event connection of its own to the fake LXD.
    settings = make_settings(LXD_SOCKET_PATH=str(lxd_events.path), LXD_TIMEOUT=5, READ_MODEL=False)
    app: FastAPI = await make_unit_app(settings=settings, lxd_handler=lxd_handler)
    await app.state.event_hub.close()
    app.state.event_hub = EventHub(
        app.state.lxd, queue_size=16, backoff_initial=0.05, backoff_max=0.2
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_config=None, ws="websockets-sansio")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started)
    try:
        yield app, f"ws://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def subscribe(base: str, query: str, **options: Any) -> ClientConnection:
    return await connect(f"{base}/api/v1/operations/ws?{query}", ping_interval=None, **options)


async def drain(ws: ClientConnection) -> int:
    """Read until the server closes; how many frames came."""
    received = 0
    try:
        while True:
            await ws.recv()
            received += 1
    except ConnectionClosed:
        return received


async def test_slow_client_is_closed_1013_and_fast_one_gets_everything(
    served: tuple[FastAPI, str], lxd_events: FakeEventStream
) -> None:
    app, base = served
    token = (await auth_for(app)).token("viewer")
    fast = await subscribe(base, f"token={token}&type=lifecycle")
    # The slow client stops reading once 1 frame waits, has a small receive buffer (no
    # autotuning to 32 MiB) and no compression (the padding would shrink to nothing): our
    # sends to it back up, and its queue in the hub fills.
    port = int(base.rsplit(":", 1)[1])
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    small.connect(("127.0.0.1", port))
    small.setblocking(False)
    slow = await subscribe(
        base, f"token={token}&type=lifecycle", max_queue=1, sock=small, compression=None
    )
    await wait_until(lambda: app.state.event_hub.state()["upstreams"][0]["subscribers"] == 2)
    count, delays = 3000, []

    async def read_fast() -> None:
        for _ in range(count):
            sent = json.loads(await fast.recv())["metadata"]["sent"]
            delays.append(time.monotonic() - sent)

    reader = asyncio.create_task(read_fast())
    for n in range(count):
        await lxd_events.send(event(n, pad=16_000))
        if n % 10 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(reader, 30)
    assert len(delays) == count
    assert sorted(delays)[int(count * 0.99)] < 0.5
    # The slow client, reading at last, finds what was sent before the cut, then 1013.
    received = await asyncio.wait_for(drain(slow), 30)
    assert slow.close_code == 1013
    assert "too slow" in (slow.close_reason or "")
    assert received < count
    assert not fast.close_code
    (upstream,) = app.state.event_hub.state()["upstreams"]
    assert upstream["subscribers"] == 1
    await fast.close()
    await wait_until(lambda: not app.state.event_hub.state()["upstreams"])


async def test_subscriber_stays_connected_while_lxd_restarts(
    served: tuple[FastAPI, str], lxd_events: FakeEventStream
) -> None:
    app, base = served
    token = (await auth_for(app)).token("viewer")
    ws = await subscribe(base, f"token={token}&type=lifecycle")
    await wait_until(lambda: len(lxd_events.connections) == 1)
    await lxd_events.send(event(1))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["metadata"]["n"] == 1
    await lxd_events.stop()
    await asyncio.sleep(0.3)
    await lxd_events.start()
    await wait_until(lambda: len(lxd_events.connections) == 1)
    await lxd_events.send(event(2))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["metadata"]["n"] == 2
    assert app.state.event_hub.state()["upstreams"][0]["connects"] == 2
    await ws.close()


@pytest.mark.parametrize(
    ("query", "role", "code"),
    [
        ("type=lifecycle", None, 4401),
        ("type=bogus", "viewer", 4400),
        ("type=lifecycle&project=a%2Fb", "viewer", 4400),
        ("type=lifecycle&project=nope", "viewer", 4404),
    ],
)
async def test_refusals(
    served: tuple[FastAPI, str], query: str, role: str | None, code: int
) -> None:
    app, base = served
    if role is not None:
        query += f"&token={(await auth_for(app)).token(role)}"
    ws = await subscribe(base, query)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == code


async def test_lxd_away_at_subscribe_closes_1011(
    served: tuple[FastAPI, str], lxd_events: FakeEventStream
) -> None:
    app, base = served
    await lxd_events.stop()
    ws = await subscribe(base, f"token={(await auth_for(app)).token('viewer')}")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1011
    assert "unreachable" in (ws.close_reason or "").lower()
