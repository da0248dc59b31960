"""One appender per process: requests queue their entry and go on; one task writes.

`AuditLog.submit()` only puts the entry in an in-memory queue (no I/O, no await), so a request
never waits on the audit write. The task started by `start()` takes whatever is queued (up to
`BATCH_MAX` entries) and appends it as one transaction (`app.audit.store.append`: the lock,
the head, the chained rows). When the database fails, the batch is kept and retried with a
backoff. `close()` (the lifespan's shutdown) writes what is still queued before it returns.

With `AUDIT_RETENTION_DAYS` > 0 the same task prunes at start and every `PRUNE_INTERVAL`.

`requested_by` (API.md: who started an operation): the operation id -> username of every
entry this process queued, kept in a bounded map as soon as the entry is known (before the
client has its answer), so the very next request sees it; other replicas' operations are looked
up in the table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import store
from app.audit.chain import normalize

log = structlog.get_logger(__name__)

BATCH_MAX = 500
QUEUE_MAX = 100_000
REQUESTED_BY_MAX = 10_000
PRUNE_INTERVAL = 3600.0
RETRY_MAX_SECONDS = 10.0


class AuditLog:
    def __init__(
        self,
        writer: AsyncEngine,
        reader: AsyncEngine,
        *,
        retention_days: int = 0,
        prune_interval: float = PRUNE_INTERVAL,
        batch_max: int = BATCH_MAX,
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self.writer = writer  # the appender's own engine (store.writer_engine)
        self.reader = reader  # reads: the app's engine
        self.retention_days = retention_days
        self.prune_interval = prune_interval
        self.batch_max = batch_max
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_max)
        self._operations: OrderedDict[str, str] = OrderedDict()
        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    # --- the request side ------------------------------------------------------------------
    def submit(self, fields: Mapping[str, Any]) -> None:
        """Queue one entry (fields of `app.audit.chain.ENTRY_FIELDS`; normalized here). Never
        waits: a full queue (the database down for long) drops the entry, logged."""
        entry = normalize(fields)
        if entry["operation_id"] and entry["actor"]:
            self.note_requested_by(entry["operation_id"], entry["actor"])
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self._dropped += 1
            log.error("audit.dropped", dropped=self._dropped, queue_max=self._queue.maxsize)
            return
        self._submitted += 1

    def note_requested_by(self, operation_id: str, username: str) -> None:
        self._operations[operation_id] = username
        self._operations.move_to_end(operation_id)
        while len(self._operations) > REQUESTED_BY_MAX:
            self._operations.popitem(last=False)

    async def requested_by(self, operation_ids: Iterable[str]) -> dict[str, str]:
        """operation id -> username for the operations started through this API (this
        process's from memory, the others' from the table)."""
        ids = set(operation_ids)
        found = {op: self._operations[op] for op in ids if op in self._operations}
        missing = ids - set(found)
        if missing:
            stored = await store.requested_by(self.reader, missing)
            for operation_id, username in stored.items():
                self.note_requested_by(operation_id, username)
            found.update(stored)
        return found

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every entry queued before this call is written (False on timeout)."""
        target = self._submitted
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._progress:
                await self._progress.wait_for(lambda: self._written >= target)
        return self._written >= target

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def written(self) -> int:
        """Entries written since the start (app.metrics)."""
        return self._written

    @property
    def dropped(self) -> int:
        """Entries dropped because the queue was full."""
        return self._dropped

    # --- the writer task -------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-appender")

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to `timeout`), stop the task, close the writer engine."""
        if self._task is not None:
            if not await self.flush(timeout):
                log.error("audit.lost_at_shutdown", entries=self._queue.qsize())
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.writer.dispose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            if self.retention_days > 0 and loop.time() >= next_prune:
                await self._prune()
                next_prune = loop.time() + self.prune_interval
            wait = max(0.0, next_prune - loop.time()) if self.retention_days > 0 else None
            try:
                async with asyncio.timeout(wait):
                    first = await self._queue.get()
            except TimeoutError:
                continue
            batch = [first]
            while len(batch) < self.batch_max:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self._write(batch)
            for _ in batch:
                self._queue.task_done()
            async with self._progress:
                self._written += len(batch)
                self._progress.notify_all()

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        delay = 0.2
        while True:
            try:
                await store.append(self.writer, batch)
                return
            except Exception as exc:  # the database: keep the batch and retry
                log.error("audit.write_failed", entries=len(batch), error=repr(exc)[:300])
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _prune(self) -> None:
        try:
            deleted = await store.prune_by_age(self.writer, days=self.retention_days)
        except Exception as exc:  # tried again at the next interval
            log.error("audit.prune_failed", error=repr(exc)[:300])
            return
        if deleted:
            log.info("audit.pruned", entries=deleted, retention_days=self.retention_days)
