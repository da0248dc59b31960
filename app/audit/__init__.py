"""The audit log: who did what, when, from where, and with what outcome; tamper-evident.

* `chain`: the entry's fields, its canonical JSON and the hash chain (pure).
* `store`: the table: append under a lock, prune with an anchor, verify, read.
* `appender`: `AuditLog`, the one writer per process (a queue drained by one task).
* `middleware`: `AuditMiddleware`, one entry per HTTP request that is not GET/HEAD/OPTIONS.
* `record(app, ...)` (here): an entry for what is not an HTTP request (WebSocket sessions).

The app holds its `AuditLog` on `app.state.audit_log` (made in the lifespan by `open_log`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from asgi_correlation_id.context import correlation_id
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from app.audit.appender import AuditLog
from app.audit.middleware import (
    AuditMiddleware,
    entry_project,
    note_detail,
    note_operation,
    route_target,
)
from app.audit.store import writer_engine
from app.core.config import Settings
from app.core.ratelimit import TrustedProxies
from app.core.ratelimit import client_ip as _client_ip

__all__ = ["AuditLog", "AuditMiddleware", "note_detail", "note_operation", "open_log", "record"]

log = structlog.get_logger(__name__)


def open_log(settings: Settings, reader: AsyncEngine) -> AuditLog:
    """The app's `AuditLog`, its writer task started (call from the lifespan)."""
    audit = AuditLog(
        writer_engine(settings.DATABASE_URL),
        reader,
        retention_days=settings.AUDIT_RETENTION_DAYS,
    )
    audit.start()
    return audit


def record(
    app: Any,
    *,
    connection: HTTPConnection | None = None,
    method: str = "WS",
    path: str | None = None,
    actor: str | None = None,
    token_id: str | None = None,
    client_ip: str | None = None,
    request_id: str | None = None,
    project: str | None = None,
    target: str | None = None,
    status: int | None = None,
    operation_id: str | None = None,
    duration_ms: float | None = None,
    detail: str | None = None,
    time: datetime | None = None,
) -> None:
    """Queue one audit entry that is not an HTTP request: a WebSocket session (method "WS").
    Never waits (the appender writes it); does nothing before the app started.

    Fields (every one optional but `path`; strings are cut to their column, and API tokens,
    JWTs and `secret=` values are replaced wherever they appear):

    * `connection`: the WebSocket (or request); fills `path`, `actor`, `token_id` (from
      `connection.state.actor`), `client_ip` (the peer, or the first untrusted
      `X-Forwarded-For` hop behind FORWARDED_ALLOW_IPS), `project` (`?project=`, else
      DEFAULT_PROJECT) and `target` (e.g. `instances/web1`) when not given.
    * `method`: "WS" for a WebSocket session (default).
    * `path`: the route's path, never its query string (`/api/v1/instances/web1/exec/ws`).
    * `actor`: the username; `token_id`: the API token's id (not its secret), or None.
    * `client_ip`, `request_id` (default: the current request ID), `project`, `target`.
    * `status`: 101 once the socket was accepted, or the close code it was refused or ended
      with (4401, 4403, 4404, 4429, 1000, 1011...).
    * `operation_id`: the LXD operation behind the session (exec, console); with an actor it
      also answers `requested_by` for that operation at once.
    * `duration_ms`: how long the session lasted; `detail`: what it was, in short (e.g. the
      exec command `sh -c 'uptime'`, `console`, `events: operation,lifecycle`). Never a secret
      of LXD's (`metadata.fds`) nor anything the client sent over the socket.
    * `time`: when it began (aware; default: now).
    """
    audit: AuditLog | None = getattr(getattr(app, "state", None), "audit_log", None)
    if audit is None:
        log.warning("audit.not_started", path=path)
        return
    if connection is not None:
        scope = connection.scope
        settings: Settings = app.state.settings
        who = getattr(connection.state, "actor", None)
        path = path or scope.get("path", "")
        if who is not None:
            actor = actor or who.username
            token_id = token_id or who.token_id
        if client_ip is None:
            peer = scope.get("client")
            client_ip = _client_ip(
                peer[0] if peer else None,
                Headers(scope=scope),
                TrustedProxies(settings.FORWARDED_ALLOW_IPS),
            )
        project = project or entry_project(scope, settings.DEFAULT_PROJECT)
        target = target or route_target(scope)
    if not path:
        raise TypeError("record() needs a path (or a connection)")
    audit.submit(
        {
            "time": time,
            "actor": actor,
            "token_id": token_id,
            "client_ip": client_ip,
            "request_id": request_id or correlation_id.get(),
            "method": method,
            "path": path,
            "project": project,
            "target": target,
            "status": status,
            "operation_id": operation_id,
            "duration_ms": duration_ms,
            "detail": detail,
        }
    )
