"""The audit log in the database: append (chained, under a lock), prune, verify, read.

Appending is serialized across processes, so that the chain never forks when replicas write
at once:

* PostgreSQL: every append (and prune) transaction first takes `pg_advisory_xact_lock
  (AUDIT_LOCK_KEY)`; the lock is released by the commit, so the next writer reads the head
  this one wrote. Replicas queue on the lock for the few milliseconds a batch takes.
* SQLite: the writer's engine (`writer_engine()`) starts its transactions with `BEGIN
  IMMEDIATE`, which takes the database's write lock before the head is read; another process
  waits for it (the busy timeout) instead of failing later with a stale read.

Inside the lock the next id is the head's id + 1 (ids are not left to the database), so ids
have no gaps: a missing id is a deleted entry. The primary key refuses a second entry with the
same id, should anything ever write without the lock.

Reads (`list_entries`, `iter_entries`, `verify`, `requested_by`) take any engine (the app's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, delete, event, func, insert, or_, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit.chain import GENESIS_HASH, chain_hash
from app.db.models import AuditAnchor, AuditEntry
from app.db.session import is_sqlite, make_engine

AUDIT_LOCK_KEY = 0x6C78_645F_6175_6469  # "lxd_audi" in ASCII; pg_advisory_xact_lock's key
ANCHOR_ID = 1
READ_BATCH = 1000
PRUNE_BATCH = 5000
_MAX_IN = 500  # ids per IN (...): SQLite builds before 3.32 allow 999 parameters

log_table = cast(Table, AuditEntry.__table__)
anchor_table = cast(Table, AuditAnchor.__table__)


def writer_engine(url: str | URL) -> AsyncEngine:
    """The appender's own engine: on SQLite, transactions begin with `BEGIN IMMEDIATE` (the
    driver's own implicit BEGIN is turned off, as SQLAlchemy documents for pysqlite)."""
    engine = make_engine(str(url))
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def _lock(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY}
        )


async def _anchor(connection: AsyncConnection) -> tuple[int, str] | None:
    row = (
        await connection.execute(
            select(anchor_table.c.last_id, anchor_table.c.last_hash).where(
                anchor_table.c.id == ANCHOR_ID
            )
        )
    ).first()
    return (int(row.last_id), str(row.last_hash)) if row else None


async def _head(connection: AsyncConnection) -> tuple[int, str]:
    """(id, hash) of the newest entry; the anchor's when everything was pruned; (0, genesis)."""
    row = (
        await connection.execute(
            select(log_table.c.id, log_table.c.hash).order_by(log_table.c.id.desc()).limit(1)
        )
    ).first()
    if row is not None:
        return int(row.id), str(row.hash)
    return await _anchor(connection) or (0, GENESIS_HASH)


async def append(engine: AsyncEngine, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Write `entries` (normalized, `app.audit.chain.normalize`) as the next links of the
    chain, in one transaction under the lock; the rows as written (with id and hashes)."""
    if not entries:
        return []
    async with engine.begin() as connection:
        await _lock(connection)
        last_id, last_hash = await _head(connection)
        rows = []
        for entry in entries:
            last_id += 1
            row = {**entry, "id": last_id, "prev_hash": last_hash}
            row["hash"] = last_hash = chain_hash(row["prev_hash"], row)
            rows.append(row)
        await connection.execute(insert(log_table), rows)
    return rows


async def prune(engine: AsyncEngine, *, older_than: datetime) -> int:
    """Delete the oldest entries, up to the first one at or after `older_than` (by id: an
    older entry after a newer one stays), moving the anchor to the last deleted entry. In
    batches, each under the lock. How many were deleted."""
    deleted = 0
    while True:
        async with engine.begin() as connection:
            await _lock(connection)
            oldest = (
                await connection.execute(
                    select(log_table.c.id, log_table.c.time, log_table.c.hash)
                    .order_by(log_table.c.id)
                    .limit(PRUNE_BATCH)
                )
            ).all()
            prunable = []
            for row in oldest:
                if row.time >= older_than:
                    break
                prunable.append(row)
            if not prunable:
                return deleted
            last = prunable[-1]
            await connection.execute(delete(log_table).where(log_table.c.id <= last.id))
            now = datetime.now(UTC)
            moved = await connection.execute(
                update(anchor_table)
                .where(anchor_table.c.id == ANCHOR_ID)
                .values(
                    last_id=last.id,
                    last_hash=last.hash,
                    pruned_at=now,
                    pruned_total=anchor_table.c.pruned_total + len(prunable),
                )
            )
            if moved.rowcount == 0:
                await connection.execute(
                    insert(anchor_table).values(
                        id=ANCHOR_ID,
                        last_id=last.id,
                        last_hash=last.hash,
                        pruned_at=now,
                        pruned_total=len(prunable),
                    )
                )
            deleted += len(prunable)
            if len(prunable) < len(oldest) or len(oldest) < PRUNE_BATCH:
                return deleted


async def prune_by_age(engine: AsyncEngine, *, days: int) -> int:
    return await prune(engine, older_than=datetime.now(UTC) - timedelta(days=days))


# --- verify ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int  # entries read, the bad one included
    first_bad_id: int | None = None
    last_id: int | None = None  # the newest entry checked, and its hash: write them down
    last_hash: str | None = None  # elsewhere to tell later whether newest entries went missing
    anchor_id: int | None = None  # entries up to this id were pruned


async def verify(engine: AsyncEngine, *, batch: int = READ_BATCH) -> Verification:
    """Walk the chain from the anchor (or the genesis hash) in id order, in batches: every
    entry must have the next id, link to the previous hash and hash to its own `hash`. The
    first entry that does not is named (for a deleted entry: the one after the gap; for an
    edited one: itself). A prune that ran meanwhile moves the anchor: checked again then."""
    for _ in range(3):
        result, anchor = await _verify_once(engine, batch)
        if result.ok:
            return result
        async with engine.connect() as connection:
            if await _anchor(connection) == anchor:
                return result
    return result


async def _verify_once(
    engine: AsyncEngine, batch: int
) -> tuple[Verification, tuple[int, str] | None]:
    async with engine.connect() as connection:
        anchor = await _anchor(connection)
    expected_id, prev_hash = (anchor[0] + 1, anchor[1]) if anchor else (1, GENESIS_HASH)
    anchor_id = anchor[0] if anchor else None
    checked = 0
    after: int | None = None
    while True:
        async with engine.connect() as connection:
            stmt = select(log_table).order_by(log_table.c.id).limit(batch)
            if after is not None:
                stmt = stmt.where(log_table.c.id > after)
            rows = (await connection.execute(stmt)).mappings().all()
        if not rows:
            break
        for row in rows:
            checked += 1
            if (
                row["id"] != expected_id
                or row["prev_hash"] != prev_hash
                or chain_hash(prev_hash, row) != row["hash"]
            ):
                bad = Verification(
                    ok=False, checked=checked, first_bad_id=int(row["id"]), anchor_id=anchor_id
                )
                return bad, anchor
            expected_id, prev_hash = row["id"] + 1, row["hash"]
        after = rows[-1]["id"]
    last_id = expected_id - 1 if checked else None
    done = Verification(
        ok=True,
        checked=checked,
        last_id=last_id,
        last_hash=prev_hash if checked else None,
        anchor_id=anchor_id,
    )
    return done, anchor


# --- read ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    method: str | None = None
    status: int | None = None
    project: str | None = None
    target: str | None = None  # this target, or anything under it (`instances/web1/...`)
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        c = log_table.c
        if self.actor is not None:
            stmt = stmt.where(c.actor == self.actor)
        if self.method is not None:
            stmt = stmt.where(c.method == self.method.upper())
        if self.status is not None:
            stmt = stmt.where(c.status == self.status)
        if self.project is not None:
            stmt = stmt.where(c.project == self.project)
        if self.target is not None:
            under = _escape_like(self.target.rstrip("/")) + "/%"
            stmt = stmt.where(or_(c.target == self.target, c.target.like(under, escape="\\")))
        if self.since is not None:
            stmt = stmt.where(c.time >= self.since)
        if self.until is not None:
            stmt = stmt.where(c.time < self.until)
        return stmt


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_entries(
    engine: AsyncEngine, where: AuditFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the entries that match, newest first, and how many match in all."""
    async with engine.connect() as connection:
        total = (
            await connection.execute(where.apply(select(func.count()).select_from(log_table)))
        ).scalar_one()
        stmt = where.apply(select(log_table)).order_by(log_table.c.id.desc())
        rows = (await connection.execute(stmt.limit(limit).offset(offset))).mappings().all()
    return [dict(row) for row in rows], int(total)


async def iter_entries(
    engine: AsyncEngine, where: AuditFilter, *, batch: int = READ_BATCH
) -> AsyncIterator[dict[str, Any]]:
    """Every entry that matches, oldest first (chain order), up to the newest one when the
    walk began; read in batches by id (keyset), a connection per batch: constant memory, and
    no connection held while the client reads slowly."""
    async with engine.connect() as connection:
        head = (await connection.execute(select(func.max(log_table.c.id)))).scalar()
    if head is None:
        return
    after = None
    while True:
        stmt = where.apply(select(log_table)).where(log_table.c.id <= head)
        if after is not None:
            stmt = stmt.where(log_table.c.id > after)
        async with engine.connect() as connection:
            rows = (
                (await connection.execute(stmt.order_by(log_table.c.id).limit(batch)))
                .mappings()
                .all()
            )
        for row in rows:
            yield dict(row)
        if len(rows) < batch:
            return
        after = rows[-1]["id"]


async def requested_by(engine: AsyncEngine, operation_ids: Iterable[str]) -> dict[str, str]:
    """operation id -> the actor of the entry that started it, for those the log knows."""
    ids = sorted(set(operation_ids))
    found: dict[str, str] = {}
    async with engine.connect() as connection:
        for start in range(0, len(ids), _MAX_IN):
            chunk = ids[start : start + _MAX_IN]
            stmt = (
                select(log_table.c.operation_id, log_table.c.actor)
                .where(log_table.c.operation_id.in_(chunk), log_table.c.actor.is_not(None))
                .order_by(log_table.c.id)
            )
            for operation_id, actor in (await connection.execute(stmt)).all():
                found.setdefault(str(operation_id), str(actor))
    return found
