"""What the instance routes ask of LXD: list, get, create, update, rename, delete, state, logs.

Also two helpers the snapshot and backup services share: `list_by_name()` (a list paged in a
stable order) and `Download` (one open streamed GET to LXD: its bytes go to the client chunk by
chunk, nothing buffered beyond one chunk, and `aclose()` closes the upstream stream; the route
calls it when the response ends, also when the client went away in the middle).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import pydantic_core

from app.services.exceptions import (
    ConflictError,
    LXDBadGateway,
    LXDBadRequest,
    LXDError,
    LXDNotFound,
    LXDTimeout,
    NotFoundError,
)
from app.services.listing import ensure_project
from app.services.lxd_client import LXDClient, LXDResponse, StreamedResponse, lxd_path
from app.services.lxd_operations import is_final, raise_if_failed, wait_operation
from app.utils.pagination import name_from_url, paginate

# Not one of LXD's log files (LXD 5.0 answers 400 "log file name ... not valid").
_LOG_NAME_REFUSED = "not valid"
# LXD 5.0.2 serves the console log once per boot; later reads fail with this (a 500).
_CONSOLE_LOG_GONE = "no such file"


async def list_instances(
    lxd: LXDClient,
    *,
    project: str,
    expand: bool,
    filter_: str | None,
    limit: int | None,
    offset: int,
    instance_type: str | None = None,
) -> dict[str, Any]:
    return await list_by_name(
        lxd,
        lxd_path("instances"),
        project=project,
        expand=expand,
        filter_=filter_,
        limit=limit,
        offset=offset,
        params={"instance-type": instance_type},
    )


async def get_instance(lxd: LXDClient, *, name: str, project: str) -> tuple[dict[str, Any], str]:
    """The instance and its ETag (for a later `If-Match`)."""
    response = await _get(lxd, name, project=project)
    return dict(response.metadata or {}), response.etag or ""


async def _get(lxd: LXDClient, name: str, *segments: str, project: str) -> LXDResponse:
    try:
        return await lxd.get(lxd_path("instances", name, *segments), project=project)
    except LXDNotFound as exc:
        raise LXDNotFound(f"Instance {name!r} not found in project {project!r}") from exc


async def get_state(lxd: LXDClient, *, name: str, project: str) -> dict[str, Any]:
    response = await _get(lxd, name, "state", project=project)
    return dict(response.metadata or {})


async def _exists(lxd: LXDClient, *, name: str, project: str) -> bool:
    try:
        await lxd.get(lxd_path("instances", name), project=project)
    except LXDNotFound:
        return False
    return True


async def _refuse_duplicate(lxd: LXDClient, *, name: str, project: str) -> None:
    # LXD 5.0 accepts a duplicate create or rename (202) and only fails the operation: check first.
    if await _exists(lxd, name=name, project=project):
        raise ConflictError(f"Instance {name!r} already exists in project {project!r}")
    await ensure_project(lxd, project)


async def _wait_finished(lxd: LXDClient, response: LXDResponse, *, timeout: int, what: str) -> None:
    """Wait for an operation that must end before the next step; raise its failure."""
    operation = await wait_operation(lxd, response.operation_id, timeout=timeout)
    if not is_final(operation):
        raise LXDTimeout(
            f"{what} did not finish within {timeout} s (operation {response.operation_id} "
            "is still running); retry when it is done"
        )
    raise_if_failed(operation)


async def create_instance(
    lxd: LXDClient, *, project: str, body: dict[str, Any], start: bool, timeout: int
) -> LXDResponse:
    """POST /1.0/instances. LXD 5.0 has no "create and start" (it ignores a `start` key), so with
    `start` this waits for the creation (at most `timeout` s) and returns the start operation,
    as `lxc launch` does."""
    await _refuse_duplicate(lxd, name=str(body["name"]), project=project)
    response = await lxd.post(lxd_path("instances"), project=project, json_body=body)
    if not start:
        return response
    await _wait_finished(lxd, response, timeout=timeout, what=f"Creating {body['name']!r}")
    return await change_state(lxd, name=str(body["name"]), project=project, action="start")


async def update_instance(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    body: dict[str, Any],
    if_match: str | None,
    replace: bool,
) -> LXDResponse:
    """PUT (replace, async in LXD) or PATCH (merge, sync) with LXD's `If-Match` check (412)."""
    path = lxd_path("instances", name)
    if replace:
        # LXD refuses a PUT that drops its own `volatile.*` keys ("Volatile idmap keys can't be
        # deleted by the user"): they are LXD's state, not the client's config, so keep them.
        # Our read's ETag guards the copy when the client sent no `If-Match` of its own.
        current, etag = await get_instance(lxd, name=name, project=project)
        config = dict(body.get("config") or {})
        for key, value in (current.get("config") or {}).items():
            if key.startswith("volatile.") and key not in config:
                config[key] = value
        body = {**body, "config": config}
        if_match = if_match or etag or None
    headers = {"If-Match": if_match} if if_match else None
    try:
        if replace:
            return await lxd.put(path, project=project, json_body=body, headers=headers)
        return await lxd.patch(path, project=project, json_body=body, headers=headers)
    except LXDNotFound as exc:
        raise LXDNotFound(f"Instance {name!r} not found in project {project!r}") from exc


async def rename_instance(lxd: LXDClient, *, name: str, project: str, new_name: str) -> LXDResponse:
    current, _ = await get_instance(lxd, name=name, project=project)
    if current.get("status") not in {None, "Stopped"}:
        raise ConflictError(f"Instance {name!r} is {current.get('status')}: stop it to rename it")
    await _refuse_duplicate(lxd, name=new_name, project=project)
    return await lxd.post(
        lxd_path("instances", name), project=project, json_body={"name": new_name}
    )


async def delete_instance(
    lxd: LXDClient, *, name: str, project: str, force: bool, timeout: int
) -> LXDResponse:
    """DELETE; with `force`, a hard stop first (waited for, at most `timeout` s)."""
    if force:
        try:
            stop = await change_state(lxd, name=name, project=project, action="stop", force=True)
            await _wait_finished(lxd, stop, timeout=timeout, what=f"Stopping {name!r}")
        except LXDBadRequest:
            pass  # "already stopped": nothing to stop
    try:
        return await lxd.delete(lxd_path("instances", name), project=project)
    except LXDNotFound as exc:
        raise LXDNotFound(f"Instance {name!r} not found in project {project!r}") from exc
    except LXDBadRequest as exc:
        if "running" in exc.detail.lower():
            raise ConflictError(
                f"Instance {name!r} is running: stop it first, or delete with ?force=true"
            ) from exc
        raise


async def change_state(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    action: str,
    force: bool = False,
    timeout: int = -1,
    stateful: bool = False,
) -> LXDResponse:
    """PUT /1.0/instances/{name}/state (async). An impossible transition fails in the operation
    with LXD's reason ("The instance is already stopped")."""
    body = {"action": action, "force": force, "timeout": timeout, "stateful": stateful}
    try:
        return await lxd.put(lxd_path("instances", name, "state"), project=project, json_body=body)
    except LXDNotFound as exc:
        raise LXDNotFound(f"Instance {name!r} not found in project {project!r}") from exc


# A failed transition's reasons, as LXD 5.0 words them inside the operation ("The container
# isn't running", "The instance is already stopped"): the client asked for the impossible.
_TRANSITION_REFUSED = re.compile(
    r"isn't running|is not running|already (running|stopped|frozen)|not frozen|isn't frozen",
    re.IGNORECASE,
)


def transition_error(exc: LXDError) -> LXDError:
    """A state change LXD refused for the instance's state is a 400 with LXD's reason (the
    generic mapping leaves some of these wordings as an LXD failure, 502)."""
    if type(exc) is LXDError and _TRANSITION_REFUSED.search(exc.detail):
        return LXDBadRequest(exc.detail)
    return exc


# --- shared helpers ---------------------------------------------------------------------------
async def list_by_name(
    lxd: LXDClient,
    path: str,
    *,
    project: str,
    expand: bool,
    filter_: str | None = None,
    limit: int | None,
    offset: int,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`list_collection()`'s contract (recursion 1 or names, 404 for an unknown project),
    paged after sorting by name: LXD returns its lists in no stable order (names-only and full
    lists differ), and paging needs one.

    The list is read through `lxd.stream()` and parsed by pydantic-core: for 50 instances that
    is half the CPU of `lxd.get()` (httpx's h11 body path and `json`), and on two cores shared
    with LXD every millisecond of ours is latency (bench/list_overhead.py)."""
    query = {"recursion": 1 if expand else 0, "filter": filter_ or None, **(params or {})}

    async def fetch() -> list[Any]:
        raw = await _get_list(lxd, path, project=project, params=query)
        if not raw and project:
            await ensure_project(lxd, project)
        items = raw if expand else [name_from_url(str(url)) for url in raw]
        items.sort(key=_name_of)
        return items

    key = (path, project, tuple(sorted((k, str(v)) for k, v in query.items() if v is not None)))
    shared = _SHARED_READS.setdefault(lxd, SharedReads())
    return paginate(await shared.get(key, fetch), limit=limit, offset=offset)


class SharedReads:
    """Identical list reads in flight at the same time share their LXD requests.

    A read joins a fetch only if that fetch starts after the read arrived (else it waits for
    the next one), so every answer still shows LXD as it was at some moment after its request
    came in: no stale reads. Under load LXD then lists once for all the readers that arrived
    meanwhile, instead of N identical times at once (LXD spends ~10 ms of CPU per list of 50
    instances: 16 dashboards polling would otherwise keep both cores busy)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[list[Any]]] = {}
        self._queued: dict[Hashable, asyncio.Future[list[Any]]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
        running = self._running.get(key)
        if running is None:
            return await asyncio.shield(self._start(key, fetch))
        queued = self._queued.get(key)
        if queued is None:
            queued = asyncio.get_running_loop().create_future()
            self._queued[key] = queued
            running.add_done_callback(lambda _: self._start_queued(key, fetch))
        return await asyncio.shield(queued)

    def _start(self, key: Hashable, fetch: Callable[[], Awaitable[list[Any]]]) -> asyncio.Task[Any]:
        task: asyncio.Task[list[Any]] = asyncio.ensure_future(fetch())
        self._running[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: Hashable, task: asyncio.Task[list[Any]]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone away

    def _start_queued(self, key: Hashable, fetch: Callable[[], Awaitable[list[Any]]]) -> None:
        queued = self._queued.pop(key)
        task = self._start(key, fetch)

        def settle(done: asyncio.Task[list[Any]]) -> None:
            if queued.done():
                return
            if done.cancelled():
                queued.cancel()
            elif done.exception() is not None:
                queued.set_exception(done.exception())  # type: ignore[arg-type]
                queued.exception()  # retrieved: every waiter may have gone away
            else:
                queued.set_result(done.result())

        task.add_done_callback(settle)


_SHARED_READS: weakref.WeakKeyDictionary[LXDClient, SharedReads] = weakref.WeakKeyDictionary()


async def _get_list(
    lxd: LXDClient, path: str, *, project: str, params: Mapping[str, Any]
) -> list[Any]:
    async with lxd.stream(path, project=project, params=params) as response:
        body = b"".join([chunk async for chunk in lxd.iter_bytes(response)])
    try:
        envelope = pydantic_core.from_json(body)
    except ValueError as exc:
        raise LXDBadGateway(f"LXD sent a reply that is not JSON for GET {path}") from exc
    metadata = envelope.get("metadata") if isinstance(envelope, dict) else None
    if not isinstance(envelope, dict) or envelope.get("type") != "sync":
        raise LXDBadGateway(f"LXD sent a reply without its envelope for GET {path}")
    if not isinstance(metadata, list | None):
        raise LXDBadGateway(f"LXD sent a list that is not a list for GET {path}")
    return metadata or []


def _name_of(item: Any) -> str:
    return str(item.get("name", "")) if isinstance(item, dict) else str(item)


class Download:
    """An open streamed GET to LXD: its headers, `chunks()` to send, `aclose()`."""

    def __init__(
        self,
        stack: AsyncExitStack,
        response: StreamedResponse,
        body: AsyncIterator[bytes],
        first: bytes,
    ) -> None:
        self._stack = stack
        self._body = body
        self.headers = response.headers
        self.first = first

    @property
    def content_length(self) -> str | None:
        return self.headers.get("content-length")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, as LXD sends it; closes the upstream stream when done or abandoned."""
        try:
            if self.first:
                first, self.first = self.first, b""
                yield first
            async for chunk in self._body:
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()


async def open_download(lxd: LXDClient, path: str, *, project: str, peek: bool = False) -> Download:
    """Start a streamed GET; LXD's errors are raised here, before anything is sent on.
    With `peek`, the first chunk is read already (`Download.first`)."""
    stack = AsyncExitStack()
    try:
        response = await stack.enter_async_context(lxd.stream(path, project=project))
        # One iterator for the whole body (a response streams only once).
        body = aiter(lxd.iter_bytes(response))
        if isinstance(body, AsyncGenerator):
            stack.push_async_callback(body.aclose)
        first = await anext(body, b"") if peek else b""
    except BaseException:
        await stack.aclose()
        raise
    return Download(stack, response, body, first)


# --- logs -------------------------------------------------------------------------------------
async def list_logs(
    lxd: LXDClient, *, name: str, project: str, limit: int | None, offset: int
) -> dict[str, Any]:
    response = await _get(lxd, name, "logs", project=project)
    names = [name_from_url(str(url)) for url in response.metadata or []]
    return paginate(sorted(names), limit=limit, offset=offset)


async def open_log(lxd: LXDClient, *, name: str, project: str, file: str) -> Download:
    """Stream one log file (`/1.0/instances/{name}/logs/{file}`)."""
    try:
        return await open_download(lxd, lxd_path("instances", name, "logs", file), project=project)
    except LXDBadRequest as exc:
        if _LOG_NAME_REFUSED in exc.detail:
            raise NotFoundError(f"Instance {name!r} has no log file {file!r}") from exc
        raise
    except LXDNotFound as exc:
        # The instance, or the file: ask which, to say it.
        await get_instance(lxd, name=name, project=project)
        raise NotFoundError(f"Instance {name!r} has no log file {file!r}") from exc


async def open_console_log(lxd: LXDClient, *, name: str, project: str) -> Download | None:
    """The console log as a stream, or None when LXD has nothing to give (see above)."""
    try:
        return await open_download(lxd, lxd_path("instances", name, "console"), project=project)
    except LXDNotFound as exc:
        raise LXDNotFound(f"Instance {name!r} not found in project {project!r}") from exc
    except LXDError as exc:
        if _CONSOLE_LOG_GONE in exc.detail:
            return None
        raise
