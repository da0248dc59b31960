"""WebSocket sessions in the audit log, against the real LXD in both modes (API.md, Part 2,
"Audit log": "every WebSocket session opened (exec with its command, console, events)").

An exec session is recorded with its command and LXD's operation (which then names who asked
for it), a console with its size, an event stream with its types; a refused upgrade with its
close code, a session that never started with the code it was closed with. The token given in
the query string, and LXD's websocket secrets, are in no entry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from tests.support.ws import close_code

pytestmark = pytest.mark.integration

V1 = "/api/v1"


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def open_ws(url: str) -> ClientConnection:
    return await connect(url, ping_interval=None, max_size=None, open_timeout=30)


async def ws_entries(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """The WS entries that match, oldest first, once the appender wrote what it holds."""
    assert await app.state.audit_log.flush(10)
    reply = await client.get(
        f"{V1}/audit", params={"method": "WS", "limit": 1000, **params}, headers=admin
    )
    assert reply.status_code == 200, reply.text
    return list(reversed(reply.json()["items"]))


async def entries_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    ready: Callable[[list[dict[str, Any]]], bool],
    **params: Any,
) -> list[dict[str, Any]]:
    """`ws_entries()` once `ready` holds for them (a socket is open before its route started
    its work in LXD, which is when the session is recorded)."""
    async with asyncio.timeout(15):
        while not ready(entries := await ws_entries(app, client, admin, **params)):
            await asyncio.sleep(0.1)
    return entries


async def test_an_exec_session_is_audited_with_its_command_and_operation(
    app: FastAPI,
    client: httpx.AsyncClient,
    live_url: str,
    instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    operator, admin = auth_headers("operator"), auth_headers("admin")
    token = token_of(operator)
    ws = await open_ws(f"{live_url}{V1}/instances/{instance}/exec/ws?token={token}")
    await ws.send(json.dumps({"command": ["sh", "-c", "echo audited"], "interactive": False}))
    frames = [frame async for frame in ws]
    assert json.loads(frames[-1]) == {"type": "exit", "return_code": 0}

    [entry] = await ws_entries(app, client, admin, target=f"instances/{instance}")
    assert entry["actor"] == "test-operator"
    assert entry["path"] == f"{V1}/instances/{instance}/exec/ws"  # no query string
    assert (entry["status"], entry["detail"], entry["project"]) == (
        101,
        "sh -c 'echo audited'",
        "default",
    )
    assert entry["operation_id"]
    assert entry["client_ip"] == "127.0.0.1"

    # LXD's operation names who started it.
    got = await client.get(f"{V1}/operations/{entry['operation_id']}", headers=operator)
    assert got.status_code == 200, got.text
    assert got.json()["requested_by"] == "test-operator"

    exported = await client.get(f"{V1}/audit/export", params={"format": "jsonl"}, headers=admin)
    assert exported.status_code == 200
    assert token not in exported.text
    assert "secret" not in exported.text


async def test_console_and_events_sessions_are_audited(
    app: FastAPI,
    client: httpx.AsyncClient,
    live_url: str,
    instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    operator, viewer, admin = (auth_headers(r) for r in ("operator", "viewer", "admin"))
    console = await open_ws(
        f"{live_url}{V1}/instances/{instance}/console/ws?token={token_of(operator)}"
        "&width=100&height=30"
    )
    [entry] = await entries_once(app, client, admin, bool, target=f"instances/{instance}")
    assert entry["path"] == f"{V1}/instances/{instance}/console/ws"
    await console.close()
    assert (entry["actor"], entry["status"], entry["detail"]) == (
        "test-operator",
        101,
        "console 100x30",
    )
    assert entry["operation_id"]

    started = datetime.now(UTC).isoformat()
    stream = await open_ws(
        f"{live_url}{V1}/operations/ws?token={token_of(viewer)}&type=operation,lifecycle"
    )
    every = await open_ws(f"{live_url}{V1}/operations/ws?token={token_of(admin)}&all-projects=true")
    try:

        def both(entries: list[dict[str, Any]]) -> bool:
            actors = {e["actor"] for e in entries if e["status"] == 101}
            return {"test-viewer", "test-admin"} <= actors

        events = await entries_once(app, client, admin, both, since=started)
        mine = [e for e in events if e["actor"] == "test-viewer"][-1]
        assert (mine["status"], mine["project"]) == (101, "default")
        assert mine["detail"] == "events: lifecycle,operation"
        admins = [e for e in events if e["actor"] == "test-admin"][-1]
        assert (admins["status"], admins["project"]) == (101, "*")
        assert admins["detail"].startswith("events: ")
    finally:
        await stream.close()
        await every.close()


async def test_refused_and_unstarted_sessions_are_audited_with_their_close_code(
    app: FastAPI,
    client: httpx.AsyncClient,
    live_url: str,
    instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    viewer, operator, admin = (auth_headers(r) for r in ("viewer", "operator", "admin"))
    target = f"instances/{instance}"

    # A viewer may not exec: refused at the upgrade.
    ws = await open_ws(f"{live_url}{V1}/instances/{instance}/exec/ws?token={token_of(viewer)}")
    assert await close_code(ws) == 4403
    # No token at all: 4401, nobody.
    ws = await open_ws(f"{live_url}{V1}/instances/{instance}/exec/ws?token=not-a-token")
    assert await close_code(ws) == 4401
    # Accepted, but the start frame is no command: closed with 4400 before LXD ran anything.
    ws = await open_ws(f"{live_url}{V1}/instances/{instance}/exec/ws?token={token_of(operator)}")
    await ws.send(json.dumps({"command": []}))
    assert await close_code(ws) == 4400

    def three(entries: list[dict[str, Any]]) -> bool:
        return len(entries) >= 3

    entries = await entries_once(app, client, admin, three, target=target)
    assert [(e["actor"], e["status"]) for e in entries] == [
        ("test-viewer", 4403),
        (None, 4401),
        ("test-operator", 4400),
    ]
    assert entries[2]["detail"] == "closed before it started"
    assert entries[2]["operation_id"] is None
    assert entries[2]["duration_ms"] >= 0
    assert all(e["path"] == f"{V1}/instances/{instance}/exec/ws" for e in entries)
    assert (await client.get(f"{V1}/audit/verify", headers=admin)).json()["ok"] is True
