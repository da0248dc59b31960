"""Read, change, write back with the ETag: the one retry loop for conflicting writes (the way
client-go's `retry.RetryOnConflict(backoff, fn)` does it), and the one registry of the locks
that serialize edits of an object within this process.

LXD checks `If-Match` before it writes, not atomically with the write: two writes that carry
the same ETag can both pass, and the second silently drops the first one's change. So edits of
one object through this process also take its lock (`one_edit_at_a_time`); a writer elsewhere
still costs a 412, and a retry from a fresh read.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import TypeVar

from app.errors import AppError, LXDConflict, LXDError, LXDPreconditionFailed

R = TypeVar("R")

_locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = weakref.WeakValueDictionary()


@asynccontextmanager
async def one_edit_at_a_time(*key: Hashable) -> AsyncIterator[None]:
    """Hold the lock of the object `key` names, e.g. `("instance", lxd.base_url, project,
    name)`; a lock lives only while someone holds or waits for it."""
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    async with lock:
        yield


class WriteLost(LXDConflict):
    """The write was accepted, but a read-back shows it did not land (another writer
    replaced it): retried like a 412."""


def is_conflict(exc: LXDError) -> bool:
    """The write met another writer: LXD's 412 on `If-Match`, or a lost write."""
    return isinstance(exc, LXDPreconditionFailed | WriteLost)


async def edit_with_etag(
    attempt: Callable[[], Awaitable[R]],
    *,
    attempts: int,
    gave_up: Callable[[LXDError], AppError],
    retry_if: Callable[[LXDError], bool] = is_conflict,
    backoff: float = 0.0,
    on_retry: Callable[[int, LXDError], None] | None = None,
) -> R:
    """Run `attempt` (read the object with its ETag, change it, write it back with
    `If-Match`) until it succeeds, at most `attempts` times. An error that `retry_if` admits
    starts a fresh attempt (after `backoff` x attempt seconds, with jitter); any other error
    is raised as it is. When every attempt met a conflict, `gave_up(last error)` is raised."""
    last: LXDError | None = None
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except LXDError as exc:
            if not retry_if(exc):
                raise
            last = exc
            if number == attempts:
                break
            if on_retry is not None:
                on_retry(number, exc)
            if backoff:
                await asyncio.sleep(backoff * number * (1 + random.random()))  # noqa: S311
    assert last is not None
    final = gave_up(last)
    if final is last:
        raise last
    raise final from last
