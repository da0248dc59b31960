"""`WS /operations/ws` against the real LXD, in both modes: events reach every subscriber
through one upstream connection, and no secret passes the relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed

from tests.support.lxd_sandbox import LXDEnv

pytestmark = pytest.mark.integration


async def subscribe(live_url: str, query: str) -> ClientConnection:
    return await connect(
        f"{live_url}/api/v1/operations/ws?{query}", ping_interval=None, open_timeout=30
    )


async def wait_for_upstream(app: FastAPI, types: list[str], subscribers: int) -> dict[str, Any]:
    """The hub's upstream for `types` once it has `subscribers` and has reached LXD (a
    subscriber is counted as it joins, which may be before the upstream's first connect
    completes on a loaded machine)."""
    async with asyncio.timeout(10):
        while True:
            for upstream in app.state.event_hub.state()["upstreams"]:
                if (
                    upstream["types"] == types
                    and upstream["subscribers"] == subscribers
                    and upstream["connects"] >= 1
                ):
                    return dict(upstream)
            await asyncio.sleep(0.02)


async def collect(
    ws: ClientConnection, stop: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            text = await ws.recv()
            assert isinstance(text, str)
            frames.append(text)
            if stop(json.loads(text)):
                return frames


async def test_instance_start_reaches_two_subscribers_through_one_upstream(
    app: FastAPI,
    live_url: str,
    stopped_instance: str,
    ws_token: Callable[..., str],
    lxd_raw: httpx.AsyncClient,
) -> None:
    query = f"token={ws_token('viewer')}&type=lifecycle&project=default"
    one = await subscribe(live_url, query)
    two = await subscribe(live_url, query)
    upstream = await wait_for_upstream(app, ["lifecycle"], 2)
    assert upstream["connects"] == 1
    assert upstream["project"] == "default"
    reply = await lxd_raw.put(f"/1.0/instances/{stopped_instance}/state", json={"action": "start"})
    await lxd_raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 60})

    def started(event: dict[str, Any]) -> bool:
        return event["metadata"].get("action") == "instance-started" and event["metadata"].get(
            "source", ""
        ).endswith(f"/instances/{stopped_instance}")

    for ws in (one, two):
        frames = await collect(ws, started)
        event = json.loads(frames[-1])
        assert event["type"] == "lifecycle"
        assert event["project"] == "default"
    (same,) = [u for u in app.state.event_hub.state()["upstreams"] if u["types"] == ["lifecycle"]]
    assert same["connects"] == 1
    await one.close()
    await wait_for_upstream(app, ["lifecycle"], 1)
    await two.close()
    async with asyncio.timeout(10):
        while any(u["types"] == ["lifecycle"] for u in app.state.event_hub.state()["upstreams"]):
            await asyncio.sleep(0.02)


async def test_no_secret_passes_the_relay(
    live_url: str,
    instance: str,
    ws_token: Callable[..., str],
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
) -> None:
    ws = await subscribe(live_url, f"token={ws_token('viewer')}&type=operation,logging")
    # An exec driven straight through LXD: its secrets are known here, and must not be there.
    body = {"command": ["sh", "-c", "exit 0"], "wait-for-websocket": True, "interactive": False}
    reply = await lxd_raw.post(f"/1.0/instances/{instance}/exec", json=body)
    operation = reply.json()["metadata"]
    secrets = operation["metadata"]["fds"]
    sockets = [
        await unix_connect(
            lxd_env.socket_path,
            f"ws://lxd/1.0/operations/{operation['id']}/websocket?secret={secrets[fd]}",
            ping_interval=None,
        )
        for fd in ("control", "0", "1", "2")
    ]
    await sockets[1].send("")
    await lxd_raw.get(f"/1.0/operations/{operation['id']}/wait", params={"timeout": 30})
    for sock in sockets:
        await sock.close()

    def finished(event: dict[str, Any]) -> bool:
        meta = event["metadata"]
        return (
            event["type"] == "operation"
            and meta["id"] == operation["id"]
            and (meta["status"] == "Success")
        )

    frames = await collect(ws, finished)
    mine = [json.loads(f) for f in frames if operation["id"] in f]
    assert any(e["type"] == "operation" for e in mine)
    for text in frames:
        assert not any(secret in text for secret in secrets.values()), text[:300]
    for event in mine:
        if event["type"] == "operation":
            assert "fds" not in (event["metadata"].get("metadata") or {})
            assert event["metadata"]["metadata"]["command"] == ["sh", "-c", "exit 0"]
    await ws.close()


@pytest.mark.parametrize(
    ("query", "role", "code"),
    [
        ("type=lifecycle", None, 4401),
        ("type=lifecycle,nonsense", "viewer", 4400),
        ("type=lifecycle&project=no-such-project-x", "viewer", 4404),
    ],
)
async def test_refusals(
    live_url: str, ws_token: Callable[..., str], query: str, role: str | None, code: int
) -> None:
    if role is not None:
        query += f"&token={ws_token(role)}"
    ws = await subscribe(live_url, query)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == code
