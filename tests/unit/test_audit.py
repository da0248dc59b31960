"""The audit log: the hash chain, verify and pruning, the middleware's entries, the routes'
filters, paging and exports, no secret in any entry, and a chain that holds under concurrency
(one app, and two writers on one database: SQLite, and PostgreSQL when `TEST_POSTGRES_URL` is
set; a database of its own is made there and dropped after).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app import audit
from app.audit import store
from app.audit.appender import AuditLog
from app.audit.chain import GENESIS_HASH, canonical_json, chain_hash, normalize
from app.db.migrations import upgrade_to_head
from app.db.models import AuditEntry
from app.db.session import make_engine
from tests.support.auth import TEST_USER_PASSWORD, auth_for
from tests.support.fake_lxd import fake_lxd_handler
from tests.support.lxd_replies import started, sync

OP_ID = "0c0ffee0-1111-4222-8333-444455556666"
AUDIT = "/api/v1/audit"


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"method": "POST", "path": "/api/v1/instances/web1/start"}
    return normalize({**base, **fields})


async def migrated(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """(writer, reader) engines on a database at head."""
    await anyio.to_thread.run_sync(upgrade_to_head, url)
    return store.writer_engine(url), make_engine(url)


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    writer, reader = await migrated(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    yield writer, reader
    await writer.dispose()
    await reader.dispose()


# --- the chain ---------------------------------------------------------------------------------
def test_canonical_json_and_hash() -> None:
    time = datetime(2026, 12, 8, 9, 15, 2, 123456, tzinfo=UTC)
    row = {
        **entry(time=time, actor="alice", status=202, duration_ms=12),
        "id": 7,
        "prev_hash": "a" * 64,
    }
    text_ = canonical_json(row)
    assert text_.startswith('{"actor":"alice","client_ip":null,"detail":null,"duration_ms":12.0,')
    assert '"time":"2026-12-08T09:15:02.123456Z"' in text_
    assert " " not in text_
    assert list(json.loads(text_)) == sorted(json.loads(text_))
    assert "hash" not in json.loads(text_)
    assert json.loads(text_)["prev_hash"] == "a" * 64
    expected = hashlib.sha256(("a" * 64 + text_).encode()).hexdigest()
    assert chain_hash("a" * 64, row) == expected
    # Any field counts: the hash changes with it.
    assert chain_hash("a" * 64, {**row, "status": 200}) != expected
    assert chain_hash("b" * 64, row) != expected


def test_normalize_refuses_unknown_fields_and_scrubs_secrets() -> None:
    with pytest.raises(TypeError):
        normalize({"method": "WS", "path": "/x", "password": "hunter2"})
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    scrubbed = entry(
        path=f"/api/v1/auth/tokens/lxa_{'Q' * 43}", detail=f"sh -c 'x {jwt}' ?secret=abc\x00"
    )
    assert "Q" * 43 not in scrubbed["path"]
    assert jwt not in scrubbed["detail"]
    assert "abc" not in scrubbed["detail"]
    assert "\x00" not in scrubbed["detail"]
    assert len(entry(path="/" + "x" * 5000)["path"]) == 1024


async def test_chain_verifies_and_names_an_edited_row(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, reader = engines
    assert await store.verify(reader) == store.Verification(ok=True, checked=0)
    rows = await store.append(writer, [entry(status=200 + i) for i in range(5)])
    assert [row["id"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    await store.append(writer, [entry(status=299)])
    result = await store.verify(reader, batch=2)  # batches: the walk crosses their edges
    assert (result.ok, result.checked, result.last_id) == (True, 6, 6)

    async with reader.begin() as connection:
        await connection.execute(
            update(AuditEntry).where(AuditEntry.id == 3).values(actor="someone-else")
        )
    result = await store.verify(reader, batch=2)
    assert (result.ok, result.first_bad_id, result.checked) == (False, 3, 3)


async def test_a_deleted_middle_row_is_found(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    writer, reader = engines
    await store.append(writer, [entry(status=200) for _ in range(6)])
    async with reader.begin() as connection:
        await connection.execute(delete(AuditEntry).where(AuditEntry.id == 4))
    result = await store.verify(reader)
    assert (result.ok, result.first_bad_id) == (False, 5)


async def test_a_rehashed_edit_is_found_at_the_next_row(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    """Whoever edits a row and recomputes its hash breaks the next row's link."""
    writer, reader = engines
    rows = await store.append(writer, [entry(status=200) for _ in range(4)])
    forged = {**rows[1], "actor": "mallory"}
    async with reader.begin() as connection:
        await connection.execute(
            update(AuditEntry)
            .where(AuditEntry.id == 2)
            .values(actor="mallory", hash=chain_hash(forged["prev_hash"], forged))
        )
    assert (await store.verify(reader)).first_bad_id == 3


async def test_pruning_keeps_the_chain_verifiable(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, reader = engines
    now = datetime.now(UTC)
    old = [entry(time=now - timedelta(days=40 - i)) for i in range(5)]
    await store.append(writer, [*old, *(entry(time=now) for _ in range(3))])
    assert await store.prune(writer, older_than=now - timedelta(days=30)) == 5
    assert await store.prune(writer, older_than=now - timedelta(days=30)) == 0
    result = await store.verify(reader)
    assert (result.ok, result.checked, result.anchor_id, result.last_id) == (True, 3, 5, 8)

    # The log goes on after the anchor.
    await store.append(writer, [entry()])
    assert (await store.verify(reader)).ok

    # Still detects an edit, and a truncated head that does not match the anchor.
    async with reader.begin() as connection:
        await connection.execute(update(AuditEntry).where(AuditEntry.id == 7).values(status=500))
    assert (await store.verify(reader)).first_bad_id == 7
    async with reader.begin() as connection:
        await connection.execute(delete(AuditEntry).where(AuditEntry.id <= 7))
    assert (await store.verify(reader)).first_bad_id == 8


async def test_pruning_everything_keeps_the_next_id_and_link(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    writer, reader = engines
    rows = await store.append(writer, [entry(time=datetime.now(UTC) - timedelta(days=9))] * 3)
    assert await store.prune(writer, older_than=datetime.now(UTC)) == 3
    assert (await store.verify(reader)).ok
    [next_row] = await store.append(writer, [entry()])
    assert (next_row["id"], next_row["prev_hash"]) == (4, rows[-1]["hash"])
    assert (await store.verify(reader)).ok


async def test_the_appender_prunes_at_start(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    writer, reader = engines
    now = datetime.now(UTC)
    await store.append(writer, [entry(time=now - timedelta(days=3)), entry(time=now)])
    log = AuditLog(writer, reader, retention_days=2)
    log.start()
    try:
        log.submit(entry())
        assert await log.flush()
        result = await store.verify(reader)
        assert (result.ok, result.checked, result.anchor_id) == (True, 2, 1)
    finally:
        await log.close()


async def test_two_writers_on_one_sqlite_file_keep_one_chain(tmp_path: Path) -> None:
    """Two processes' appenders (two engines, `BEGIN IMMEDIATE`) writing at once."""
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    await concurrent_writers(url)


# --- PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A database of its own on TEST_POSTGRES_URL's server (dropped after), or that URL's own
    database when this role may not create one."""
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set TEST_POSTGRES_URL to run the audit log against PostgreSQL")
    name = f"lxd_api_audit_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # no CREATEDB: the given database, as test_migrations uses it
        await admin.dispose()
        yield url
        return
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_postgres_chain_verify_prune(postgres_url: str) -> None:
    writer, reader = await migrated(postgres_url)
    try:
        async with reader.begin() as connection:
            await connection.execute(text("DELETE FROM audit_log"))
            await connection.execute(text("DELETE FROM audit_anchor"))
        now = datetime.now(UTC)
        await store.append(writer, [entry(time=now - timedelta(days=5)), entry(duration_ms=1.5)])
        assert (await store.verify(reader)).ok
        assert await store.prune(writer, older_than=now - timedelta(days=1)) == 1
        assert (await store.verify(reader)).ok
        async with reader.begin() as connection:
            await connection.execute(update(AuditEntry).where(AuditEntry.id == 2).values(path="/x"))
        assert (await store.verify(reader)).first_bad_id == 2
        async with reader.begin() as connection:
            await connection.execute(text("DELETE FROM audit_log"))
            await connection.execute(text("DELETE FROM audit_anchor"))
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_two_writers_on_one_postgres_database_keep_one_chain(postgres_url: str) -> None:
    await concurrent_writers(postgres_url)


async def concurrent_writers(url: str) -> None:
    """Two appenders, each with its own engine (as two replicas), 200 entries each in small
    batches, at once: one chain, no id twice, every entry there."""
    first, reader = await migrated(url)
    second = store.writer_engine(url)
    try:
        async with reader.begin() as connection:
            await connection.execute(text("DELETE FROM audit_log"))
            await connection.execute(text("DELETE FROM audit_anchor"))
        logs = [AuditLog(engine, reader, batch_max=7) for engine in (first, second)]
        for log in logs:
            log.start()
        for i in range(200):
            for n, log in enumerate(logs):
                log.submit(entry(actor=f"replica{n}", status=200 + i % 50))
            if i % 20 == 0:
                await asyncio.sleep(0)
        assert all(await asyncio.gather(*(log.flush(30) for log in logs)))
        result = await store.verify(reader)
        assert (result.ok, result.checked, result.last_id) == (True, 400, 400)
        _, total = await store.list_entries(
            reader, store.AuditFilter(actor="replica1"), limit=1, offset=0
        )
        assert total == 200
        for log in logs:
            await log.close()  # disposes its writer
        async with reader.begin() as connection:
            await connection.execute(text("DELETE FROM audit_log"))
    finally:
        await first.dispose()
        await second.dispose()
        await reader.dispose()


# --- the app: the middleware's entries ----------------------------------------------------------
def operation_lxd(request: httpx.Request) -> httpx.Response:
    """LXD that starts an operation on `PUT .../state` and knows it afterwards."""
    op = {
        "id": OP_ID,
        "class": "task",
        "status": "Running",
        "status_code": 103,
        "resources": {"instances": ["/1.0/instances/web1"]},
        "metadata": None,
        "may_cancel": False,
        "err": "",
    }
    if request.method == "PUT" and request.url.path.endswith("/state"):
        return started(op)
    if request.url.path == f"/1.0/operations/{OP_ID}":
        return sync(op)
    if request.url.path == "/1.0/operations":
        groups = {"running": [op]} if request.url.params.get("recursion") == "1" else {}
        return sync(groups)
    return fake_lxd_handler(request)


@pytest.fixture
async def audited(
    make_unit_app: Callable[..., Any],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app: FastAPI = await make_unit_app(lxd_handler=operation_lxd)
    await auth_for(app)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield app, http


async def entries(app: FastAPI, http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    headers = (await auth_for(app)).headers("admin")
    reply = await http.get(AUDIT, params={"limit": 1000, **params}, headers=headers)
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def test_a_start_is_recorded_with_actor_target_and_operation(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    auth = await auth_for(app)
    reply = await http.post(
        "/api/v1/instances/web1/start", headers={**auth.headers("operator"), "X-Request-ID": "r-1"}
    )
    assert reply.status_code == 202, reply.text
    # The very next request knows who started it (before the entry is written).
    op = await http.get(f"/api/v1/operations/{OP_ID}", headers=auth.headers("viewer"))
    assert op.json()["requested_by"] == "test-operator"
    listed = await http.get("/api/v1/operations", headers=auth.headers("viewer"))
    assert listed.json()["items"][0]["requested_by"] == "test-operator"

    [item] = await entries(app, http, target="instances/web1")
    assert item["actor"] == "test-operator"
    assert item["token_id"] is None
    assert (item["method"], item["path"], item["status"]) == (
        "POST",
        "/api/v1/instances/web1/start",
        202,
    )
    assert (item["project"], item["target"], item["operation_id"]) == (
        "default",
        "instances/web1",
        OP_ID,
    )
    assert (item["client_ip"], item["request_id"], item["detail"]) == ("192.0.2.7", "r-1", None)
    assert item["duration_ms"] > 0

    # Another process (a replica): from the table.
    fresh = AuditLog(store.writer_engine(app.state.settings.DATABASE_URL), app.state.db_engine)
    assert await fresh.requested_by([OP_ID, str(uuid.uuid4())]) == {OP_ID: "test-operator"}
    await fresh.writer.dispose()


async def test_reads_are_not_recorded_and_refusals_are(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    auth = await auth_for(app)
    await http.get("/api/v1/instances", headers=auth.headers("viewer"))
    await http.post("/api/v1/instances/web1/start")  # no token
    await http.delete("/api/v1/storage/pools/x", headers=auth.headers("operator"))
    await http.post("/api/v1/nowhere", headers=auth.headers("admin"))
    await http.post("/api/v1/instances/a%2Fb/start", headers=auth.headers("admin"))
    big = {**auth.headers("admin"), "Content-Type": "application/json"}
    await http.post("/api/v1/instances", headers=big, content=b"x" * (2 * 1024 * 1024))
    await http.patch(
        "/api/v1/users/test-viewer?project=p1", headers=big, content=b'{"role": "nope"}'
    )
    got = {
        (e["method"], e["path"], e["status"], e["detail"], e["actor"], e["project"], e["target"])
        for e in await entries(app, http)
    }
    assert got == {
        (
            "POST",
            "/api/v1/instances/web1/start",
            401,
            "unauthorized",
            None,
            "default",
            "instances/web1",
        ),
        (
            "DELETE",
            "/api/v1/storage/pools/x",
            403,
            "forbidden",
            "test-operator",
            "default",
            "storage/pools/x",
        ),
        ("POST", "/api/v1/nowhere", 404, "not_found", None, "default", None),
        ("POST", "/api/v1/instances/a/b/start", 422, "invalid_name", None, "default", None),
        ("POST", "/api/v1/instances", 413, "payload_too_large", None, "default", None),
        (
            "PATCH",
            "/api/v1/users/test-viewer",
            422,
            "validation_error",
            "test-admin",
            "p1",
            "users/test-viewer",
        ),
    }


async def test_a_login_is_recorded_with_the_username_it_tried_and_no_secret(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    auth = await auth_for(app)
    wrong = "Wr0ng-but-secret-passw0rd"
    reply = await http.post("/api/v1/auth/login", json={"username": "ghost", "password": wrong})
    assert reply.status_code == 401
    good = await http.post(
        "/api/v1/auth/token",
        data={"username": "test-viewer", "password": TEST_USER_PASSWORD},
    )
    assert good.status_code == 200
    access, refresh = good.json()["access_token"], good.json()["refresh_token"]
    await http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    # Tokens in a query string and in a path.
    jwt = auth.token("operator")
    await http.post(f"/api/v1/instances/web1/start?token={jwt}&x=1")
    api_token = "lxa_" + "S" * 43
    await http.post(f"/api/v1/instances/web1/stop?token={api_token}")
    await http.delete(f"/api/v1/auth/tokens/{api_token}", headers=auth.headers("admin"))

    logins = await entries(app, http, method="POST")
    by_path = {(e["path"], e["status"]): e for e in logins}
    failed = by_path[("/api/v1/auth/login", 401)]
    assert (failed["actor"], failed["token_id"], failed["target"]) == ("ghost", None, None)
    assert failed["detail"]  # the error code, nothing of the body
    assert by_path[("/api/v1/auth/token", 200)]["actor"] == "test-viewer"
    assert by_path[("/api/v1/auth/token", 200)]["project"] is None

    export = await http.get(f"{AUDIT}/export", headers=auth.headers("admin"))
    assert export.status_code == 200
    for secret in (wrong, TEST_USER_PASSWORD, access, refresh, jwt, api_token, "S" * 43):
        assert secret not in export.text
    assert "?" not in "".join(json.loads(line)["path"] for line in export.text.splitlines())


async def test_filters_paging_and_bad_values(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    now = datetime.now(UTC)
    for i in range(12):
        audit.record(
            app,
            method="WS" if i % 3 == 0 else "POST",
            path=f"/api/v1/instances/c{i}/exec/ws",
            actor="alice" if i % 2 else "bob",
            project="p1" if i < 6 else "p2",
            target=f"instances/c{i}",
            status=101 if i % 3 == 0 else 202,
            time=now - timedelta(hours=12 - i),
        )
    every = await entries(app, http)
    assert len(every) == 12
    assert [e["id"] for e in every] == sorted((e["id"] for e in every), reverse=True)
    assert {e["actor"] for e in await entries(app, http, actor="alice")} == {"alice"}
    assert len(await entries(app, http, method="ws")) == 4
    assert len(await entries(app, http, status=101, project="p1")) == 2
    assert [e["target"] for e in await entries(app, http, target="instances/c1")] == [
        "instances/c1"
    ]
    since = (now - timedelta(hours=3, minutes=30)).isoformat()
    assert len(await entries(app, http, since=since)) == 3
    until = (now - timedelta(hours=10, minutes=30)).replace(tzinfo=None).isoformat()  # UTC
    assert len(await entries(app, http, until=until)) == 2

    headers = (await auth_for(app)).headers("admin")
    page = await http.get(AUDIT, params={"limit": 5, "offset": 10}, headers=headers)
    body = page.json()
    assert (body["total"], body["limit"], body["offset"], len(body["items"])) == (12, 5, 10, 2)
    assert [e["id"] for e in body["items"]] == [e["id"] for e in every[10:]]
    for bad in (
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"status": "ok"},
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"method": "PO ST"},
    ):
        reply = await http.get(AUDIT, params=bad, headers=headers)
        assert reply.status_code == 422, bad
    reply = await http.get(f"{AUDIT}/export", params={"format": "xml"}, headers=headers)
    assert reply.status_code == 422


async def test_exports_parse_and_equal_the_list(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    auth = await auth_for(app)
    await http.post("/api/v1/instances/web1/start", headers=auth.headers("operator"))
    await http.post("/api/v1/instances/web1/stop")
    audit.record(app, path="/api/v1/instances/web1/console/ws", actor="=cmd|' /C calc'!A0")
    listed = await entries(app, http)
    assert len(listed) == 3

    jsonl = await http.get(f"{AUDIT}/export?format=jsonl", headers=auth.headers("admin"))
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert jsonl.headers["content-disposition"].startswith("attachment; filename=")
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert lines == listed[::-1]  # oldest first
    # Offline verification from the export alone.
    prev = GENESIS_HASH
    for line in lines:
        assert line["prev_hash"] == prev
        assert chain_hash(prev, line) == line["hash"]
        prev = line["hash"]

    reply = await http.get(f"{AUDIT}/export?format=csv", headers=auth.headers("admin"))
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [int(row["id"]) for row in rows] == [line["id"] for line in lines]
    for row, line in zip(rows, lines, strict=True):
        for name, value in line.items():
            expected = "" if value is None else str(value)
            if name == "actor" and expected.startswith("="):
                expected = "'" + expected  # no formula for a spreadsheet
            assert row[name] == expected, name

    filtered = await http.get(
        f"{AUDIT}/export", params={"status": 401}, headers=auth.headers("admin")
    )
    assert [json.loads(x)["status"] for x in filtered.text.splitlines()] == [401]


async def test_verify_route(audited: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, http = audited
    headers = (await auth_for(app)).headers("admin")
    assert (await http.get(f"{AUDIT}/verify", headers=headers)).json() == {"ok": True, "checked": 0}
    for _ in range(3):
        await http.post("/api/v1/instances/web1/start")
    body = (await http.get(f"{AUDIT}/verify", headers=headers)).json()
    assert (body["ok"], body["checked"], body["last_id"]) == (True, 3, 3)
    async with app.state.db_sessionmaker() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(status=200))
        await session.commit()
    body = (await http.get(f"{AUDIT}/verify", headers=headers)).json()
    assert body == {"ok": False, "first_bad_id": 2, "checked": 2}


async def test_record_for_a_websocket_session(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    audit.record(
        app,
        path="/api/v1/instances/web1/exec/ws",
        actor="alice",
        token_id="tok_0123",
        project="default",
        target="instances/web1",
        status=101,
        operation_id=OP_ID,
        duration_ms=1234.5678,
        detail="exec: sh -c uptime",
    )
    # requested_by at once, before it is written.
    assert await app.state.audit_log.requested_by([OP_ID]) == {OP_ID: "alice"}
    with pytest.raises(TypeError):
        audit.record(app, path="/x", password="nope")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        audit.record(app)
    [item] = await entries(app, http)
    assert (item["method"], item["status"], item["duration_ms"]) == ("WS", 101, 1234.568)
    assert (item["token_id"], item["detail"]) == ("tok_0123", "exec: sh -c uptime")


async def test_twenty_concurrent_writes_leave_a_chain_that_verifies(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    auth = await auth_for(app)
    replies = await asyncio.gather(
        *(
            http.post(f"/api/v1/instances/c{i}/start", headers=auth.headers("operator"))
            for i in range(20)
        )
    )
    assert {reply.status_code for reply in replies} == {202}
    headers = auth.headers("admin")
    body = (await http.get(f"{AUDIT}/verify", headers=headers)).json()
    assert (body["ok"], body["checked"]) == (True, 20)
    assert {e["target"] for e in await entries(app, http)} == {f"instances/c{i}" for i in range(20)}


async def test_queued_entries_are_written_at_shutdown(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/shutdown.db"
    settings = make_settings(DATABASE_URL=url)
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    app = create_app(settings, lxd_transport=httpx.MockTransport(fake_lxd_handler))
    async with LifespanManager(app):
        for i in range(50):
            audit.record(app, path=f"/api/v1/x/{i}")
    reader = make_engine(url)
    try:
        result = await store.verify(reader)
        assert (result.ok, result.checked) == (True, 50)
    finally:
        await reader.dispose()


async def test_a_noted_detail_is_the_entry_detail_with_the_error_code(
    audited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = audited
    auth = await auth_for(app)
    url = "/api/v1/instances/web1/files"
    await http.put(url, params={"path": "/etc/motd"}, content=b"hi", headers=auth.headers())
    await http.delete(url, params={"path": "/x/../y"}, headers=auth.headers())
    await http.delete(url, params={"path": "/etc/a"}, headers=auth.headers("viewer"))
    got = {(e["method"], e["status"], e["detail"]) for e in await entries(app, http)}
    assert got == {
        ("PUT", 404, "/etc/motd [not_found]"),  # the fake LXD has no instance
        ("DELETE", 422, "/x/../y [invalid_path]"),
        ("DELETE", 403, "/etc/a [forbidden]"),
    }


def test_note_detail_outside_a_request_and_long_details() -> None:
    from app.audit.middleware import _detail

    audit.note_detail("/nowhere")  # no request: nothing to note, no error
    assert _detail(None, None) is None
    assert _detail(None, "forbidden") == "forbidden"
    assert _detail("/etc/x", None) == "/etc/x"
    long = _detail("/" + "a" * 600, "not_found")
    assert long is not None
    assert long.endswith(" [not_found]")
    assert len(long) <= 512
