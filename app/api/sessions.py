"""Open WebSocket sessions (exec, console, events), held per user: a cap on how many one user
may have open, and an end for the sessions of a user who lost the right to them.

A token is checked once, at the upgrade; a session can last for hours. So every replica keeps
its own sessions here and, every `POLL_INTERVAL` seconds, reads the standing of each distinct
user that has one (`get_standing()`: one small query per user, none when nobody is connected).
Disabling a user, deleting it, changing its password or its role (each of those bumps
`token_version`) closes its sessions with 4401, and a role that no longer admits the route
closes them with 4403, within `POLL_INTERVAL` plus one query, on every replica, with nothing
shared between replicas but the user store.

Ending a session means closing our client socket with that code. The routes tear down their
LXD side the way they do when the client leaves (the exec'd command is killed, the console
detached, the event subscription dropped): the server delivers the disconnect to the route's
`receive()`. Should a route still run `CANCEL_GRACE` seconds later, its work is cancelled.

Every session is in the audit log (API.md, "Audit log"; method "WS"): once its work started
in LXD (`WSSession.opened()`: status 101, the exec command, `console WxH` or the event types,
and LXD's operation), or, if it never got that far, with the code it was closed with (4400,
4404, 1011, 1000 when the client left first). A session the registry ends gets a second
entry: its close code (4401, 4403, 4404) and how long it lasted. Refusals at the upgrade
(4401, 4403, 4404, 4429) are recorded by the WebSocket auth error handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncEngine

from app import audit
from app.api.websockets import (
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_MANY_SESSIONS,
    close_socket,
    closed_with,
)
from app.auth import access, current
from app.auth.access import require
from app.auth.errors import PermissionDeniedError
from app.core.security import WS_CLOSE_FORBIDDEN, WS_CLOSE_UNAUTHORIZED, Role, WebSocketAuthError
from app.db.api_tokens import TokenGrant, get_grant
from app.db.crud import Standing, get_standing
from app.db.models import User, utcnow
from app.errors import LXDNotFound
from app.services.events import ALL_PROJECTS

log = structlog.get_logger(__name__)

# Seconds between two reads of the user store: a revoked user's sockets close within this plus
# one query. Not a setting: it bounds how long a disabled user keeps a shell; the cost is one
# query per connected user and interval.
POLL_INTERVAL = 0.5
# Seconds a closed session's route gets to end by itself before its work is cancelled.
CANCEL_GRACE = 5.0
# Standing reads at once in one poll (leaves the rest of the connection pool to requests).
POLL_CONCURRENCY = 4

_REASONS = {
    WS_CLOSE_UNAUTHORIZED: "Token is no longer valid",
    WS_CLOSE_FORBIDDEN: "The user's role no longer allows this session",
    CLOSE_NOT_FOUND: "The user has no role left in this session's project",
}


@dataclass(frozen=True, slots=True)
class _Rights:
    role: str
    projects: dict[str, str]


def close_code_for_standing(
    standing: Standing | None,
    *,
    token_version: int,
    min_role: Role,
    project: str | None,
    grant: TokenGrant | bool | None = False,
) -> int | None:
    """Whether a session may go on: None if so, else its close code, the same the upgrade
    would get now. 4401: the user is gone or disabled, or (a login) its tokens were cut off (a
    password, role or active change bumps the version), or (an API token: `grant`, None when
    deleted) the token was revoked or expired; 4404: the caller has no role left in the
    session's `project`; 4403: its role there (None: every project, the global role) no longer
    admits the route. `grant=False`: the session was opened with a login."""
    token_session = grant is not False
    revoked = grant is None  # an API token deleted since
    if isinstance(grant, TokenGrant):
        refusal = current.api_token_refusal(
            revoked=grant.revoked, expires_at=grant.expires_at, now=utcnow()
        )
        revoked = refusal is not None
    if not current.is_current(
        standing, version=None if token_session else token_version, revoked=revoked
    ):
        return WS_CLOSE_UNAUTHORIZED
    assert standing is not None
    member: access.Member = standing
    if isinstance(grant, TokenGrant):
        role, projects = access.token_rights(standing, grant.role, grant.projects)
        member = _Rights(role.value, projects)
    try:
        require(member, min_role, "project" if project else "global", project)
    except LXDNotFound:
        return CLOSE_NOT_FOUND
    except PermissionDeniedError:
        return WS_CLOSE_FORBIDDEN
    return None


@dataclass(eq=False)
class WSSession:
    """One open socket, as the registry knows it."""

    websocket: WebSocket
    user_id: int
    username: str
    token_version: int
    min_role: Role
    project: str | None
    path: str
    token_id: str | None = None  # opened with an API token (its rights are checked too)
    code: int | None = None  # set when the registry ended the session
    audited: bool = False  # `opened()` recorded the session
    began: float = field(default_factory=time.monotonic, repr=False)
    _deadline: asyncio.Timeout | None = field(default=None, repr=False)
    _closing: asyncio.Task[None] | None = field(default=None, repr=False)

    def opened(self, detail: str, *, operation_id: str | None = None) -> None:
        """The session's work started in LXD: its audit entry (status 101). `detail` says what
        it is (the exec command, `console 80x24`, `events: lifecycle`), never a secret."""
        self.audited = True
        self._record(101, detail, operation_id=operation_id)

    def _record(
        self, status: int, detail: str | None, *, operation_id: str | None = None, **extra: Any
    ) -> None:
        audit.record(
            self.websocket.app,
            connection=self.websocket,
            project=self.project or ALL_PROJECTS,
            status=status,
            detail=detail,
            operation_id=operation_id,
            **extra,
        )

    def _ended(self) -> None:
        """The block is over: a session that never started, or one the registry ended."""
        lasted = round((time.monotonic() - self.began) * 1000, 2)
        if self.code is not None:
            self._record(self.code, f"ended: {_REASONS[self.code]}", duration_ms=lasted)
        elif not self.audited:
            code = closed_with(self.websocket) or CLOSE_NORMAL
            self._record(code, "closed before it started", duration_ms=lasted)


class SessionRegistry:
    """The open sessions of this replica (`app.state.ws_sessions`), made in the lifespan."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_per_user: int,
        poll_interval: float = POLL_INTERVAL,
        cancel_grace: float = CANCEL_GRACE,
    ) -> None:
        self.engine = engine
        self.max_per_user = max_per_user
        self.poll_interval = poll_interval
        self.cancel_grace = cancel_grace
        self._by_user: dict[int, set[WSSession]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._failing = False

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_forever(), name="ws-sessions-poll")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    # --- sessions ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def session(
        self, websocket: WebSocket, *, user: User, min_role: Role, project: str | None
    ) -> AsyncIterator[WSSession]:
        """Hold a session for the block (enter it after the accept). Over the user's cap: a
        `WebSocketAuthError` that closes the socket with 4429. If the registry ends the session,
        the block ends normally once the route noticed (or was cancelled)."""
        held = self._by_user.setdefault(user.id, set())
        if len(held) >= self.max_per_user:
            log.info("ws.session_refused", user=user.username, limit=self.max_per_user)
            raise WebSocketAuthError(
                CLOSE_TOO_MANY_SESSIONS, f"Too many sessions: at most {self.max_per_user} per user"
            )
        entry = WSSession(
            websocket=websocket,
            user_id=user.id,
            username=user.username,
            token_version=user.token_version,
            min_role=min_role,
            project=project,
            path=websocket.scope.get("path", ""),
            token_id=_token_id(websocket),
        )
        held.add(entry)
        try:
            async with asyncio.timeout(None) as deadline:
                entry._deadline = deadline
                yield entry
        except TimeoutError:
            if entry.code is None or not deadline.expired():
                raise
            log.warning("ws.session_cancelled", user=entry.username, path=entry.path)
        finally:
            entry._deadline = None
            self._forget(entry)
            entry._ended()
            if entry._closing is not None:
                await asyncio.gather(entry._closing, return_exceptions=True)

    def count(self, user_id: int) -> int:
        return len(self._by_user.get(user_id, ()))

    def state(self) -> dict[int, int]:
        """Open sessions per user id."""
        return {user_id: len(held) for user_id, held in self._by_user.items()}

    def by_kind(self) -> dict[str, int]:
        """Open sessions per kind: `exec`, `console`, `events` (from the route's path)."""
        counts: dict[str, int] = {}
        for held in self._by_user.values():
            for entry in held:
                kind = _kind(entry.path)
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def _forget(self, entry: WSSession) -> None:
        held = self._by_user.get(entry.user_id)
        if held is None:
            return
        held.discard(entry)
        if not held:
            del self._by_user[entry.user_id]

    # --- the poll ------------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.check()
            except Exception:  # a bug here must not end the checks for good
                log.exception("ws.sessions_check_error")

    async def check(self) -> None:
        """One round: read each connected user's standing, end the sessions it no longer
        allows. A user store that cannot be read keeps the sessions (logged once per outage):
        the sessions of a user changed meanwhile end with the first read that works."""
        gate = asyncio.Semaphore(POLL_CONCURRENCY)

        async def one(user_id: int) -> bool:
            async with gate:
                try:
                    standing = await get_standing(self.engine, user_id)
                except Exception as exc:  # the store is down: keep the sessions, try again
                    if not self._failing:
                        log.warning("ws.sessions_check_failed", error=type(exc).__name__)
                    return False
                grants: dict[str, TokenGrant | None] = {}
                for token_id in {e.token_id for e in self._by_user.get(user_id, ()) if e.token_id}:
                    try:
                        grants[token_id] = await get_grant(self.engine, token_id)
                    except Exception:
                        return False
            for entry in list(self._by_user.get(user_id, ())):
                if entry.code is not None:
                    continue
                code = close_code_for_standing(
                    standing,
                    token_version=entry.token_version,
                    min_role=entry.min_role,
                    project=entry.project,
                    grant=grants.get(entry.token_id) if entry.token_id else False,
                )
                if code is not None:
                    self._end(entry, code)
            return True

        results = await asyncio.gather(*(one(user_id) for user_id in list(self._by_user)))
        self._failing = not all(results)

    def _end(self, entry: WSSession, code: int) -> None:
        entry.code = code
        log.info("ws.session_revoked", user=entry.username, path=entry.path, code=code)
        entry._closing = asyncio.create_task(close_socket(entry.websocket, code, _REASONS[code]))
        if entry._deadline is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(RuntimeError):  # the block has just ended
                entry._deadline.reschedule(loop.time() + self.cancel_grace)


def _kind(path: str) -> str:
    if path.endswith("/exec/ws"):
        return "exec"
    if path.endswith("/console/ws"):
        return "console"
    return "events"


def _token_id(websocket: WebSocket) -> str | None:
    """The API token the socket was opened with (`app.api.access` sets the actor)."""
    actor = getattr(getattr(websocket, "state", None), "actor", None)
    return getattr(actor, "token_id", None)


def ws_sessions(websocket: WebSocket) -> SessionRegistry:
    registry: SessionRegistry = websocket.app.state.ws_sessions
    return registry
