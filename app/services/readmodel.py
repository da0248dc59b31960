"""The instance read model: LXD's instance lists kept in memory, in step with LXD's events.

One `ReadModel` per app (`app.state.read_model`), for its one LXD connection. It holds its own
event stream from LXD (`/1.0/events?type=lifecycle,operation&all-projects=true`) and, per
project that was read, the project's instances as `GET /1.0/instances?recursion=1` lists them.

Contract (API.md, "Lists at scale"):

* A project's model is loaded by one LXD list, on its first read, and only while the event
  stream is up (the stream first: no event can fall between the list and the stream).
* An instance lifecycle event (created, updated, started, stopped, shutdown, renamed,
  deleted...) re-reads that one instance (`GET /1.0/instances/{name}`). The event marks the
  instance at once: a read that starts after the event arrived waits for that re-read, so it
  never shows what the event changed. An operation that ends re-reads its instances again
  (LXD writes some keys after the lifecycle event). A profile event reloads the project; a
  project event drops it.
* This API's own writes: `note_write()` (from `ReadModelMiddleware`, once the response is sent)
  re-reads the instance the route names, or reloads the project when the route names none
  (a create, a volume or NIC attach): the next read on this replica shows the write.
* While the event stream is down, no model is used (reads go to LXD); when it breaks every
  model is dropped and the next read loads it again.
* Bounded: at most `MAX_PROJECTS` projects (least recently read dropped first) and
  `MAX_INSTANCES` instances in one project (a bigger project is read from LXD every time).

Reads return a `Snapshot`: an immutable, name-sorted tuple, so paging a read never mixes two
states of the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from app.errors import LXDError, LXDNotFound
from app.lxd import LXDClient, lxd_path

log = structlog.get_logger(__name__)

MAX_PROJECTS = 64
MAX_INSTANCES = 10_000
BACKOFF_INITIAL = 0.5
# Rounds of (reload, re-reads) a read waits for before it reads LXD itself instead.
SETTLE_ROUNDS = 5
TOO_BIG_RETRY = 60.0
BACKOFF_MAX = 10.0
# Instance events that change nothing a list shows: no re-read for them.
READ_ONLY_ACTIONS = frozenset(
    {
        "instance-exec",
        "instance-console",
        "instance-console-reset",
        "instance-console-retrieved",
        "instance-log-retrieved",
        "instance-log-deleted",
        "instance-file-retrieved",
        "instance-file-pushed",
        "instance-file-deleted",
        "instance-metadata-retrieved",
        "instance-metadata-template-retrieved",
        "instance-metadata-template-created",
        "instance-metadata-template-deleted",
    }
)
# An operation's status codes once it ended: success, failure, cancelled.
FINAL_STATUS_CODES = frozenset({200, 400, 401})
Fetch = Callable[[], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A project's instances at one moment: sorted by name, never changed."""

    items: tuple[dict[str, Any], ...]
    loaded_at: float  # time.time() of the project's last full load

    @property
    def age(self) -> int:
        """Seconds since the project's last full load (the `Age` header)."""
        return max(0, int(time.time() - self.loaded_at))


@dataclass(slots=True)
class _Entry:
    instance: dict[str, Any]
    etag: str | None  # known once read on its own (a list gives none)


@dataclass(eq=False)
class _Project:
    name: str
    entries: dict[str, _Entry] = field(default_factory=dict)
    loaded_at: float = 0.0
    loading: asyncio.Task[None] | None = None
    loaded: bool = False
    stale: bool = False  # reload before the next answer
    rereads: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    seen_while_loading: set[str] = field(default_factory=set)
    snapshot: Snapshot | None = None

    def changed(self) -> None:
        self.snapshot = None

    def cancel(self) -> None:
        """Stop the re-reads (a load in flight ends by itself: its readers see the drop)."""
        for task in self.rereads.values():
            task.cancel()
        self.rereads.clear()


class ReadModel:
    """See the module docstring. `start()` in the lifespan, `close()` at shutdown."""

    def __init__(
        self,
        lxd: LXDClient,
        *,
        enabled: bool = True,
        max_projects: int = MAX_PROJECTS,
        max_instances: int = MAX_INSTANCES,
    ) -> None:
        self.lxd = lxd
        self.enabled = enabled
        self.max_projects = max_projects
        self.max_instances = max_instances
        self.connected = False
        self.epoch = 0  # bumped at every (re)connection of the event stream
        self.hits = 0
        self.misses = 0
        self.events = 0  # lifecycle events received
        # The last events as (project, action, name): what tests and debugging look at.
        self.recent: deque[tuple[str, str, str]] = deque(maxlen=256)
        self.connection: Any = None  # the event stream's websocket while it is up
        self._projects: OrderedDict[str, _Project] = OrderedDict()
        self._too_big: dict[str, float] = {}  # project -> when to try to hold it again
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._follow_events(), name="read-model-events")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._drop_all()

    @property
    def usable(self) -> bool:
        return self.enabled and self.connected

    # --- reads ---------------------------------------------------------------------------
    async def instances(self, project: str, fetch: Fetch) -> Snapshot | None:
        """The project's instances, or None when the model cannot answer (the stream is down,
        the project is too big): then the caller reads LXD. `fetch` lists the project from
        LXD (`recursion=1`) for a (re)load; its errors (an unknown project) pass through."""
        if not self.usable:
            self.misses += 1
            return None
        model = await self._ready(project, fetch)
        if model is None:
            self.misses += 1
            return None
        self.hits += 1
        if model.snapshot is None:
            items = tuple(entry.instance for _, entry in sorted(model.entries.items()))
            model.snapshot = Snapshot(items, model.loaded_at)
        return model.snapshot

    async def instance(
        self, project: str, name: str, fetch: Fetch
    ) -> tuple[dict[str, Any], str, int] | None:
        """One instance with its ETag and the model's age, None when the model cannot answer
        (the caller reads LXD). A missing instance is LXD's 404."""
        if not self.usable:
            self.misses += 1
            return None
        model = await self._ready(project, fetch)
        if model is None:
            self.misses += 1
            return None
        entry = model.entries.get(name)
        if entry is None or entry.etag is None:
            # The list gave no ETag: read it on its own once. A name the model does not know
            # is asked of LXD too (made a moment ago, its event still on the way): a 404
            # always comes from LXD.
            self._reread(model, name)
            model = await self._ready(project, fetch)
            if model is None:
                self.misses += 1
                return None
            entry = model.entries.get(name)
        if entry is None:
            self.hits += 1
            raise LXDNotFound(f"Instance {name!r} not found in project {project!r}")
        self.hits += 1
        return entry.instance, entry.etag or "", Snapshot((), model.loaded_at).age

    async def _ready(self, project: str, fetch: Fetch) -> _Project | None:
        """The project's model, loaded and with every re-read that was due done; None when it
        cannot answer (the stream broke meanwhile, the project is too big, or changes keep
        coming faster than `SETTLE_ROUNDS` rounds of re-reads)."""
        if self._too_big.get(project, 0.0) > time.monotonic():
            return None
        epoch = self.epoch
        model = self._projects.get(project)
        if model is None:
            model = _Project(project)
            self._projects[project] = model
            self._evict()
        self._projects.move_to_end(project)
        for _ in range(SETTLE_ROUNDS):
            if model.stale or not model.loaded:
                if model.loading is None or model.loading.done():
                    model.loading = asyncio.ensure_future(self._load(model, fetch))
                try:
                    await asyncio.shield(model.loading)
                except Exception:  # e.g. an unknown project: nothing to keep
                    if self._projects.get(project) is model and not model.loaded:
                        del self._projects[project]
                    raise
            if model.rereads:
                await asyncio.gather(*list(model.rereads.values()), return_exceptions=True)
            dropped = self._projects.get(project) is not model
            if epoch != self.epoch or not self.connected or dropped:
                return None  # the stream broke meanwhile: what was read may have missed events
            if model.loaded and not model.stale and not model.rereads:
                return model
        return None

    async def _load(self, model: _Project, fetch: Fetch) -> None:
        model.stale = False
        model.seen_while_loading.clear()
        started = time.time()
        instances = await fetch()
        if len(instances) > self.max_instances:
            log.info("read_model.project_too_big", project=model.name, instances=len(instances))
            self._too_big[model.name] = time.monotonic() + TOO_BIG_RETRY
            if self._projects.get(model.name) is model:
                del self._projects[model.name]
            return
        model.entries = {
            str(item["name"]): _Entry(item, None) for item in instances if isinstance(item, dict)
        }
        model.loaded_at = started
        model.loaded = True
        model.changed()
        for name in model.seen_while_loading:  # events that came while the list was read
            self._reread(model, name)
        model.seen_while_loading.clear()

    # --- changes -------------------------------------------------------------------------
    def note_write(self, project: str, name: str | None) -> None:
        """This API changed `name` in `project` (None: something it cannot name, such as a
        new instance): re-read it, or reload the project, before the next answer."""
        model = self._projects.get(project)
        if model is None:
            return
        if name is None:
            model.stale = True
        elif model.loaded:
            self._reread(model, name)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events += 1
        metadata = event.get("metadata") or {}
        if event.get("type") == "operation":
            self._on_operation(str(event.get("project") or "default"), metadata)
            return
        action = str(metadata.get("action") or "")
        url = urlsplit(str(metadata.get("source") or ""))
        project = str(event.get("project") or "") or _query_project(url.query) or "default"
        segments = [unquote(part) for part in url.path.strip("/").split("/")]
        self.recent.append((project, action, segments[2] if len(segments) > 2 else ""))
        if action.startswith("project-"):
            self._drop(segments[2] if len(segments) > 2 else project)
            return
        model = self._projects.get(project)
        if model is None:
            return
        if action.startswith("instance-") and len(segments) > 2 and segments[1] == "instances":
            if action in READ_ONLY_ACTIONS:
                return
            names = {segments[2]}
            old = (metadata.get("context") or {}).get("old_name")
            if isinstance(old, str) and old:
                names.add(old)
            for name in names:
                self._changed(model, name)
        elif action.startswith("profile-"):
            model.stale = True  # expanded config of the instances that use it

    def _on_operation(self, project: str, operation: dict[str, Any]) -> None:
        """An operation that ended: its instances are read again. LXD sends an instance's
        lifecycle event before the operation's last writes (a new instance's
        `volatile.apply_template`, a started one's `volatile.last_state.*`)."""
        if operation.get("status_code") not in FINAL_STATUS_CODES:
            return
        resources = operation.get("resources") or {}
        urls = [*(resources.get("instances") or ()), *(resources.get("containers") or ())]
        names = set()
        for url in urls:
            segments = [unquote(p) for p in urlsplit(str(url)).path.strip("/").split("/")]
            if len(segments) > 2 and segments[1] in {"instances", "containers"}:
                names.add(segments[2])
        model = self._projects.get(project)
        for name in names:
            self.recent.append((project, "operation-done", name))
            if model is not None:
                self._changed(model, name)

    def _changed(self, model: _Project, name: str) -> None:
        if model.loaded and not (model.loading and not model.loading.done()):
            self._reread(model, name)
        else:
            model.seen_while_loading.add(name)

    def _reread(self, model: _Project, name: str) -> None:
        task = asyncio.ensure_future(self._read_one(model, name))
        model.rereads[name] = task  # the latest one wins; an older one applies nothing

        def forget(done: asyncio.Task[None]) -> None:
            if model.rereads.get(name) is done:
                del model.rereads[name]
            if not done.cancelled():
                done.exception()  # retrieved (logged in _read_one)

        task.add_done_callback(forget)

    async def _read_one(self, model: _Project, name: str) -> None:
        me = asyncio.current_task()
        try:
            reply = await self.lxd.get(lxd_path("instances", name), project=model.name)
        except LXDNotFound:
            if model.rereads.get(name) is me:
                model.entries.pop(name, None)
                model.changed()
            return
        except (LXDError, ValueError) as exc:  # cannot tell: reload the project
            log.warning("read_model.reread_failed", project=model.name, error=str(exc)[:200])
            model.stale = True
            return
        if model.rereads.get(name) is me and isinstance(reply.metadata, dict):
            model.entries[name] = _Entry(reply.metadata, reply.etag)
            model.changed()

    # --- the event stream ----------------------------------------------------------------
    async def _follow_events(self) -> None:
        delay = BACKOFF_INITIAL
        params = {"type": "lifecycle,operation", "all-projects": "true"}
        while True:
            try:
                connection = await self.lxd.websocket(lxd_path("events"), params=params)
            except LXDError as exc:
                log.info("read_model.stream_unavailable", detail=exc.detail, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_INITIAL
            self.epoch += 1
            self.connection = connection
            self.connected = True
            log.info("read_model.stream_up", epoch=self.epoch)
            try:
                async for message in connection:
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        self._on_event(json.loads(message))
            except Exception as exc:  # the connection broke: every model may have missed events
                log.warning("read_model.stream_lost", error=type(exc).__name__)
            finally:
                self.connected = False
                self.connection = None
                self._drop_all()
                with contextlib.suppress(Exception):
                    await connection.close()
            await asyncio.sleep(BACKOFF_INITIAL)

    def _drop(self, project: str) -> None:
        model = self._projects.pop(project, None)
        if model is not None:
            model.cancel()

    def _drop_all(self) -> None:
        for project in list(self._projects):
            self._drop(project)

    def _evict(self) -> None:
        while len(self._projects) > self.max_projects:
            oldest = next(iter(self._projects))
            self._drop(oldest)

    def state(self) -> dict[str, Any]:
        """For metrics and tests: the stream, the projects held and their sizes."""
        return {
            "connected": self.connected,
            "epoch": self.epoch,
            "projects": {name: len(model.entries) for name, model in self._projects.items()},
            "hits": self.hits,
            "misses": self.misses,
            "events": self.events,
        }


def _query_project(query: str) -> str:
    values = parse_qs(query).get("project")
    return values[0] if values else ""
