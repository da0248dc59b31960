"""`WS /instances/{name}/console/ws` against the real LXD, in both modes.

What is verified, honestly: the busybox test image runs no getty on its console, so there is no
login prompt to talk to. Bytes from the container reach the client (a command writes to
`/dev/console`), the client's bytes reach the console terminal (its line discipline echoes them
back), a resize is accepted without breaking the session (the new size cannot be read back: the
container's `stty` cannot query `/dev/console`), and closing our socket ends LXD's console
operation. When the instance stops, LXD ends the console and our socket closes with 1000.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.integration


async def open_console(
    live_url: str, name: str, token: str | None, **query: Any
) -> ClientConnection:
    params = {"token": token, **query} if token is not None else query
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"{live_url}/api/v1/instances/{name}/console/ws" + (f"?{qs}" if qs else "")
    return await connect(url, ping_interval=None, max_size=None, open_timeout=30)


async def read_until(ws: ClientConnection, needle: bytes, timeout: float = 15) -> bytes:
    seen = bytearray()
    async with asyncio.timeout(timeout):
        while needle not in seen:
            message = await ws.recv()
            assert isinstance(message, bytes), message
            seen += message
    return bytes(seen)


async def raw_exec(raw: httpx.AsyncClient, name: str, command: list[str]) -> int:
    reply = await raw.post(
        f"/1.0/instances/{name}/exec", json={"command": command, "wait-for-websocket": False}
    )
    done = await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 30})
    return int(done.json()["metadata"]["metadata"]["return"])


async def console_operations(raw: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    ops = (await raw.get("/1.0/operations", params={"recursion": 1})).json()["metadata"]
    return [
        op
        for op in ops.get("running") or []
        if op["description"] == "Showing console"
        and f"/1.0/instances/{name}" in op["resources"].get("instances", [])
    ]


async def test_bytes_flow_both_ways_and_close_ends_lxd_console(
    live_url: str, instance: str, ws_token: Callable[..., str], lxd_raw: httpx.AsyncClient
) -> None:
    ws = await open_console(live_url, instance, ws_token("operator"), width=100, height=30)
    async with asyncio.timeout(10):
        while not await console_operations(lxd_raw, instance):
            await asyncio.sleep(0.1)
    # Container -> client.
    assert (
        await raw_exec(lxd_raw, instance, ["sh", "-c", "echo from-inside-42 > /dev/console"]) == 0
    )
    await read_until(ws, b"from-inside-42")
    # Client -> console terminal: its line discipline echoes what it receives.
    await ws.send(b"typed-by-client\n")
    await read_until(ws, b"typed-by-client")
    # A resize is passed on; the session goes on (no error frame, bytes still flow).
    await ws.send(json.dumps({"type": "resize", "width": 132, "height": 40}))
    assert await raw_exec(lxd_raw, instance, ["sh", "-c", "echo after-resize > /dev/console"]) == 0
    await read_until(ws, b"after-resize")
    # Exec-only controls are refused with an error frame, not a close.
    await ws.send(json.dumps({"type": "signal", "signal": 9}))
    async with asyncio.timeout(10):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                assert json.loads(message)["type"] == "error"
                break
    await ws.close()
    async with asyncio.timeout(10):
        while await console_operations(lxd_raw, instance):
            await asyncio.sleep(0.1)


async def test_stopping_the_instance_ends_the_session_cleanly(
    live_url: str, instance: str, ws_token: Callable[..., str], lxd_raw: httpx.AsyncClient
) -> None:
    ws = await open_console(live_url, instance, ws_token("operator"))
    async with asyncio.timeout(10):
        while not await console_operations(lxd_raw, instance):
            await asyncio.sleep(0.1)
    reply = await lxd_raw.put(
        f"/1.0/instances/{instance}/state", json={"action": "stop", "force": True}
    )
    await lxd_raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 60})
    async with asyncio.timeout(20):
        await ws.wait_closed()
    assert ws.close_code == 1000
    assert await console_operations(lxd_raw, instance) == []


@pytest.mark.parametrize(("role", "code"), [(None, 4401), ("viewer", 4403)])
async def test_auth_close_codes(
    live_url: str, instance: str, ws_token: Callable[..., str], role: str | None, code: int
) -> None:
    ws = await open_console(live_url, instance, None if role is None else ws_token(role))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == code


async def test_unknown_instance_and_bad_input(
    live_url: str, ws_token: Callable[..., str], unique: Callable[[str], str], instance: str
) -> None:
    for name, query, code in (
        (unique("missing"), {}, 4404),
        ("bad..name", {}, 4400),
        (instance, {"width": 0}, 4400),
        (instance, {"height": 20000}, 4400),
        (instance, {"width": "wide"}, 4400),
    ):
        ws = await open_console(live_url, name, ws_token("operator"), **query)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == code, (name, query)
