"""Open WebSocket sessions against the real LXD, in both modes: a user cut off while connected
loses its exec, console and event sockets within about a second (and nothing it ran is left in
LXD), and one user holds at most `WS_MAX_SESSIONS_PER_USER` (16) sockets.

The users here are made for each test (the shared test users must keep their tokens).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from app.core.security import create_token
from app.db import crud
from tests.support.ws import close_code

pytestmark = pytest.mark.integration

CUT_OFF_WITHIN = 1.5  # seconds: the poll (0.5 s), one query, the close


class Account:
    def __init__(self, app: FastAPI, name: str) -> None:
        self.app = app
        self.name = name
        self.id = 0

    async def token(self) -> str:
        """A fresh access token for the user's current token version."""
        async with self.app.state.db_sessionmaker() as session:
            user = await crud.get_user_by_username(session, self.name)
        assert user is not None
        self.id = user.id
        token, _ = create_token(
            self.app.state.settings,
            user_id=user.id,
            token_version=user.token_version,
            kind="access",
        )
        return token


@pytest.fixture
async def account(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[[str], str],
) -> AsyncIterator[Account]:
    """A new operator, deleted afterwards."""
    name = unique("ws")
    body = {"username": name, "password": "pw-" + secrets.token_hex(8), "role": "operator"}
    reply = await client.post("/api/v1/auth/register", json=body, headers=auth_headers("admin"))
    assert reply.status_code == 201, reply.text
    try:
        yield Account(app, name)
    finally:
        await client.delete(f"/api/v1/users/{name}", headers=auth_headers("admin"))


async def open_ws(url: str) -> ClientConnection:
    return await connect(url, ping_interval=None, max_size=None, open_timeout=30)


async def exec_shell(live_url: str, instance: str, token: str) -> ClientConnection:
    ws = await open_ws(f"{live_url}/api/v1/instances/{instance}/exec/ws?token={token}")
    await ws.send(json.dumps({"command": ["sh"], "interactive": True, "width": 80, "height": 24}))
    return ws


async def events(live_url: str, token: str) -> ClientConnection:
    return await open_ws(f"{live_url}/api/v1/operations/ws?token={token}&type=lifecycle")


async def refused_with(url: str) -> int | None:
    ws = await open_ws(url)
    return await close_code(ws)


async def until(check: Callable[[], Any], timeout: float = 15, every: float = 0.1) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(every)


async def ps(raw: httpx.AsyncClient, instance: str) -> str:
    body = {"command": ["ps", "-o", "pid,args"], "record-output": True, "wait-for-websocket": False}
    reply = await raw.post(f"/1.0/instances/{instance}/exec", json=body)
    op = (await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 30})).json()
    stdout = ""
    for fd, url in (op["metadata"]["metadata"].get("output") or {}).items():
        if fd == "1":
            stdout = (await raw.get(url)).text
        await raw.delete(url)
    return stdout


async def websocket_operations(raw: httpx.AsyncClient, instance: str) -> list[dict[str, Any]]:
    """LXD's running exec/console operations on the instance."""
    ops = (await raw.get("/1.0/operations", params={"recursion": 1})).json()["metadata"]
    return [
        op
        for op in ops.get("running") or []
        if op["class"] == "websocket"
        and f"/1.0/instances/{instance}" in op["resources"].get("instances", [])
    ]


async def test_disabling_a_user_ends_its_sessions_and_what_they_ran(
    app: FastAPI,
    client: httpx.AsyncClient,
    live_url: str,
    instance: str,
    account: Account,
    auth_headers: Callable[..., dict[str, str]],
    lxd_raw: httpx.AsyncClient,
) -> None:
    token = await account.token()
    marker = f"sleep {4000 + secrets.randbelow(5000)}"
    shell = await exec_shell(live_url, instance, token)
    await shell.send(f"{marker}\n".encode())
    console = await open_ws(f"{live_url}/api/v1/instances/{instance}/console/ws?token={token}")
    stream = await events(live_url, token)

    async def running() -> bool:
        return marker in await ps(lxd_raw, instance)

    async def all_open() -> bool:
        return bool(app.state.ws_sessions.count(account.id) == 3)

    await until(running)
    await until(all_open)
    await asyncio.sleep(1.2)  # two polls: an allowed user keeps its sessions
    assert [ws.state for ws in (shell, console, stream)] == [State.OPEN] * 3
    assert len(await websocket_operations(lxd_raw, instance)) == 2

    reply = await client.patch(
        f"/api/v1/users/{account.name}", json={"is_active": False}, headers=auth_headers("admin")
    )
    assert reply.status_code == 200, reply.text
    started = time.monotonic()
    codes = await asyncio.gather(*(close_code(ws) for ws in (shell, console, stream)))
    elapsed = time.monotonic() - started
    print(f"cut off: 3 sessions closed {elapsed:.3f} s after the PATCH answered")
    assert codes == [4401, 4401, 4401]
    assert elapsed < CUT_OFF_WITHIN

    async def gone() -> bool:
        return marker not in await ps(lxd_raw, instance)

    async def no_operations() -> bool:
        return not await websocket_operations(lxd_raw, instance)

    async def released() -> bool:  # each route's teardown ends a moment after LXD's side
        return bool(app.state.ws_sessions.count(account.id) == 0)

    await until(gone)  # the exec'd shell and what it ran were killed
    await until(no_operations)  # the exec and the console operations ended
    await until(released)


async def test_lowering_the_role_cuts_off_every_session_then_the_new_token_decides(
    app: FastAPI,
    client: httpx.AsyncClient,
    live_url: str,
    instance: str,
    account: Account,
    auth_headers: Callable[..., dict[str, str]],
    lxd_raw: httpx.AsyncClient,
) -> None:
    """operator -> viewer: a role change bumps the token version, so every open socket of the
    user closes with 4401, the events stream too, though a viewer may read events. With a new
    token the user may open the events stream again, and exec is refused with 4403."""
    token = await account.token()
    shell = await exec_shell(live_url, instance, token)
    stream = await events(live_url, token)

    async def both_open() -> bool:
        return bool(app.state.ws_sessions.count(account.id) == 2)

    await until(both_open)
    reply = await client.patch(
        f"/api/v1/users/{account.name}", json={"role": "viewer"}, headers=auth_headers("admin")
    )
    assert reply.status_code == 200, reply.text
    started = time.monotonic()
    codes = await asyncio.gather(close_code(shell), close_code(stream))
    elapsed = time.monotonic() - started
    print(f"role change: 2 sessions closed {elapsed:.3f} s after the PATCH answered")
    assert codes == [4401, 4401]
    assert elapsed < CUT_OFF_WITHIN

    async def no_operations() -> bool:
        return not await websocket_operations(lxd_raw, instance)

    await until(no_operations)

    token = await account.token()
    stream = await events(live_url, token)
    assert (
        await refused_with(f"{live_url}/api/v1/instances/{instance}/exec/ws?token={token}") == 4403
    )
    await asyncio.sleep(1.2)  # two polls: the viewer keeps what a viewer may have
    assert stream.state is State.OPEN
    await stream.close()


async def test_the_17th_session_is_refused_with_4429_and_the_others_stay(
    app: FastAPI,
    live_url: str,
    instance: str,
    account: Account,
) -> None:
    assert app.state.settings.WS_MAX_SESSIONS_PER_USER == 16
    token = await account.token()
    shell = await exec_shell(live_url, instance, token)
    streams = [await events(live_url, token) for _ in range(15)]

    async def sixteen_open() -> bool:
        return bool(app.state.ws_sessions.count(account.id) == 16)

    await until(sixteen_open)
    try:
        assert await refused_with(f"{live_url}/api/v1/operations/ws?token={token}") == 4429
        assert (
            await refused_with(f"{live_url}/api/v1/instances/{instance}/exec/ws?token={token}")
            == 4429
        )
        await asyncio.sleep(0.7)
        assert all(ws.state is State.OPEN for ws in [shell, *streams])
        assert app.state.ws_sessions.count(account.id) == 16
        # The shell still works.
        await shell.send(b"echo $((40 + 2))ok\n")
        seen = b""
        async with asyncio.timeout(20):
            while b"42ok" not in seen:
                message = await shell.recv()
                if isinstance(message, bytes):
                    seen += message
        # A closed session frees its place.
        await streams.pop().close()

        async def fifteen_open() -> bool:
            return bool(app.state.ws_sessions.count(account.id) == 15)

        await until(fifteen_open)
        streams.append(await events(live_url, token))
        await until(sixteen_open)
        await asyncio.sleep(0.3)
        assert streams[-1].state is State.OPEN
    finally:
        for ws in [shell, *streams]:
            await ws.close()
