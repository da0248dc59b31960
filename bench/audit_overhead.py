"""What the audit log adds to a mutating request, timed in-process.

The same app twice (a mocked LXD that answers `PUT /1.0/instances/web1/state` with an
operation at once, SQLite): with the audit middleware and its appender, and with the
middleware taken out. `POST /api/v1/instances/web1/start` as an operator, one request at a
time, the two apps in turn so that both see the same load; then a burst of concurrent requests
per app. The appender's writes run on the same event loop, so their cost is in the figures
too (what requests do not wait for is the database write itself).

    .venv/bin/python bench/audit_overhead.py [--rounds 2000] [--burst 50]

Also the middleware alone around a trivial ASGI app (the entry built, normalized, queued: its
own cost without the app's noise), the appender's write per entry, and a list
(`GET /api/v1/instances`, 20 instances from the mocked LXD) on both apps, with the operator's
JWT and with an API token of the same operator.

Targets: at most 0.5 ms added to the median request, and by the middleware alone; nothing
(within noise: 0.1 ms) added to a GET; an API token no slower than a JWT on the list. Prints a
table and, as its last line, one JSON object; exits 1 when the target is missed. No LXD
needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from app.api.access import Actor
from app.audit import AuditLog, AuditMiddleware, store
from app.audit.chain import normalize
from app.auth import tokens as api_tokens
from app.core.config import Settings
from app.core.security import Role, create_token
from app.db import crud
from app.db.migrations import upgrade_to_head
from app.db.session import make_engine
from app.lxd import lxd_path
from app.main import create_app

TARGET_MS = 0.5
NOISE_MS = 0.1  # what "nothing added" and "no slower" allow for
OP_ID = "0c0ffee0-1111-4222-8333-444455556666"
URL = "/api/v1/instances/web1/start"
LIST_URL = "/api/v1/instances?limit=20"
INSTANCES = json.dumps(
    {
        "type": "sync",
        "status_code": 200,
        "metadata": [
            {"name": f"web{i}", "status": "Stopped", "type": "container", "project": "default"}
            for i in range(20)
        ],
    }
).encode()


def lxd(request: httpx.Request) -> httpx.Response:
    if request.method == "PUT" and request.url.path == lxd_path("instances", "web1", "state"):
        op = {"id": OP_ID, "class": "task", "status": "Running", "status_code": 103}
        return httpx.Response(
            202,
            json={
                "type": "async",
                "status_code": 100,
                "operation": f"/1.0/operations/{OP_ID}",
                "metadata": op,
            },
        )
    if request.method == "GET" and request.url.path == lxd_path("instances"):
        return httpx.Response(200, stream=httpx.ByteStream(INSTANCES))
    return httpx.Response(200, json={"type": "sync", "status_code": 200, "metadata": {}})


@asynccontextmanager
async def started(folder: str, name: str, *, audited: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        _env_file=None,
        JWT_SECRET="b" * 48,
        DATABASE_URL=f"sqlite+aiosqlite:///{folder}/{name}.db",
        LOG_LEVEL="WARNING",
    )
    app: FastAPI = create_app(settings, lxd_transport=httpx.MockTransport(lxd))
    if not audited:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditMiddleware]
    async with LifespanManager(app):
        headers, api_token = await operator_headers(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            client.api_token = api_token  # type: ignore[attr-defined]
            yield client


async def operator_headers(app: FastAPI) -> tuple[dict[str, str], str]:
    """The operator's JWT header, and an API token of the operator's (its secret)."""
    async with app.state.db_sessionmaker() as session:
        user = await crud.create_user(
            session,
            username="bench-operator",
            password_hash="x",  # noqa: S106 (never checked here)
            role=Role.operator,
        )
        await session.commit()
        _, secret = await api_tokens.create_token(
            session,
            app.state.settings,
            user_id=user.id,
            name="bench",
            role=None,
            projects=None,
            expires_in_days=None,
        )
    token, _ = create_token(
        app.state.settings, user_id=user.id, token_version=user.token_version, kind="access"
    )
    return {"Authorization": f"Bearer {token}"}, secret


async def one(client: httpx.AsyncClient) -> float:
    began = time.perf_counter()
    reply = await client.post(URL)
    elapsed = (time.perf_counter() - began) * 1000
    assert reply.status_code == 202, reply.text
    return elapsed


async def listed(client: httpx.AsyncClient, *, api_token: bool = False) -> float:
    headers = {"Authorization": f"Bearer {client.api_token}"} if api_token else None  # type: ignore[attr-defined]
    began = time.perf_counter()
    reply = await client.get(LIST_URL, headers=headers)
    elapsed = (time.perf_counter() - began) * 1000
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["items"]) == 20
    return elapsed


async def burst_ms(client: httpx.AsyncClient, size: int) -> float:
    began = time.perf_counter()
    await asyncio.gather(*(one(client) for _ in range(size)))
    return (time.perf_counter() - began) * 1000


class _State:
    pass


async def middleware_alone_us(folder: str, rounds: int) -> tuple[float, float]:
    """(median us of a trivial ASGI app, the same inside AuditMiddleware): what the middleware
    itself costs a request (the entry built, normalized, queued), without the app's noise."""
    url = f"sqlite+aiosqlite:///{folder}/alone.db"
    await asyncio.to_thread(upgrade_to_head, url)
    reader = make_engine(url)
    audit = AuditLog(store.writer_engine(url), reader)
    audit.start()

    async def trivial(scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_params"] = {"name": "web1"}
        scope.setdefault("state", {})["actor"] = Actor(1, "bench", None)
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = _State()
    app.state = _State()  # type: ignore[attr-defined]
    app.state.audit_log = audit  # type: ignore[attr-defined]
    app.state.settings = Settings(_env_file=None, JWT_SECRET="b" * 48)  # type: ignore[attr-defined]
    wrapped = AuditMiddleware(trivial)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        return None

    def scope() -> Scope:
        return {
            "type": "http",
            "method": "POST",
            "path": URL,
            "raw_path": URL.encode(),
            "query_string": b"",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1234),
            "app": app,
        }

    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, into in ((trivial, samples[0]), (wrapped, samples[1])):
            began = time.perf_counter()
            await fn(scope(), receive, send)
            into.append((time.perf_counter() - began) * 1e6)
    assert await audit.flush(30)
    await audit.close()
    await reader.dispose()
    return statistics.median(samples[0]), statistics.median(samples[1])


async def append_us_per_entry(folder: str, batch: int = 500, batches: int = 10) -> float:
    """What the appender's write costs per entry (SQLite, batches of `batch`): off the request
    path, but on the same event loop and disk."""
    url = f"sqlite+aiosqlite:///{folder}/append.db"
    await asyncio.to_thread(upgrade_to_head, url)
    writer = store.writer_engine(url)
    entries = [normalize({"method": "POST", "path": URL, "status": 202}) for _ in range(batch)]
    await store.append(writer, entries)
    began = time.perf_counter()
    for _ in range(batches):
        await store.append(writer, entries)
    elapsed = time.perf_counter() - began
    await writer.dispose()
    return elapsed / (batch * batches) * 1e6


async def measure(rounds: int, burst: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        bare_us, wrapped_us = await middleware_alone_us(folder, rounds * 5)
        per_entry_us = await append_us_per_entry(folder)
        async with (
            started(folder, "plain", audited=False) as plain,
            started(folder, "audited", audited=True) as audited,
        ):
            for _ in range(200):  # warm up both
                await one(plain)
                await one(audited)
                await listed(plain)
                await listed(audited, api_token=True)
            samples: dict[str, list[float]] = {
                "plain": [],
                "audited": [],
                "get_plain": [],
                "get_audited": [],
                "get_token": [],
            }
            for _ in range(rounds):
                samples["plain"].append(await one(plain))
                samples["audited"].append(await one(audited))
                samples["get_plain"].append(await listed(plain))
                samples["get_audited"].append(await listed(audited))
                samples["get_token"].append(await listed(audited, api_token=True))
            bursts: dict[str, list[float]] = {"plain": [], "audited": []}
            for _ in range(10):
                bursts["plain"].append(await burst_ms(plain, burst))
                bursts["audited"].append(await burst_ms(audited, burst))
            app = audited.app  # type: ignore[attr-defined]
            assert await app.state.audit_log.flush(30)
            result = await store.verify(app.state.db_engine)
            assert result.ok, result
            written = result.checked
    return {
        "plain_median_ms": statistics.median(samples["plain"]),
        "audited_median_ms": statistics.median(samples["audited"]),
        "plain_p95_ms": statistics.quantiles(samples["plain"], n=20)[-1],
        "audited_p95_ms": statistics.quantiles(samples["audited"], n=20)[-1],
        "plain_burst_ms": statistics.median(bursts["plain"]),
        "audited_burst_ms": statistics.median(bursts["audited"]),
        "get_plain_median_ms": statistics.median(samples["get_plain"]),
        "get_audited_median_ms": statistics.median(samples["get_audited"]),
        "get_token_median_ms": statistics.median(samples["get_token"]),
        "entries_written": written,
        "middleware_alone_us": wrapped_us - bare_us,
        "append_per_entry_us": per_entry_us,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.rounds, args.burst))
    added = figures["audited_median_ms"] - figures["plain_median_ms"]
    alone_ms = figures["middleware_alone_us"] / 1000
    rows = [
        ("median POST .../start, no audit", figures["plain_median_ms"]),
        ("median POST .../start, audited", figures["audited_median_ms"]),
        ("p95, no audit", figures["plain_p95_ms"]),
        ("p95, audited", figures["audited_p95_ms"]),
        (f"{args.burst} concurrent, no audit (whole burst)", figures["plain_burst_ms"]),
        (f"{args.burst} concurrent, audited (whole burst)", figures["audited_burst_ms"]),
        ("median GET list, no audit (JWT)", figures["get_plain_median_ms"]),
        ("median GET list, audited (JWT)", figures["get_audited_median_ms"]),
        ("median GET list, audited (API token)", figures["get_token_median_ms"]),
        ("the middleware alone (trivial app inside)", alone_ms),
        ("the appender's write, per entry (batch 500)", figures["append_per_entry_us"] / 1000),
    ]
    print(f"{'what':44} {'ms':>9}")
    for what, value in rows:
        print(f"{what:44} {value:9.3f}")
    print(f"added to the median request: {added:.3f} ms (target <= {TARGET_MS} ms)")
    get_added = figures["get_audited_median_ms"] - figures["get_plain_median_ms"]
    token_added = figures["get_token_median_ms"] - figures["get_audited_median_ms"]
    print(f"added to a GET: {get_added:.3f} ms (target: nothing, within {NOISE_MS} ms)")
    print(f"API token over JWT on the list: {token_added:.3f} ms (target <= {NOISE_MS} ms)")
    print(f"entries written and verified: {int(figures['entries_written'])}")
    ok = max(added, alone_ms) <= TARGET_MS and max(get_added, token_added) <= NOISE_MS
    print(
        json.dumps(
            {
                **{key: round(value, 4) for key, value in figures.items()},
                "added_median_ms": round(added, 4),
                "get_added_ms": round(get_added, 4),
                "token_over_jwt_ms": round(token_added, 4),
                "target_ms": TARGET_MS,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
