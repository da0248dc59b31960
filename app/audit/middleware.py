"""Pure ASGI middleware: one audit entry for every HTTP request that may change something.

Every method but GET, HEAD and OPTIONS is recorded, refused requests too (401, 403, 404, 413,
422, 429...), once the response is sent. It sits inside the request-ID middleware (the entry
carries the ID) and outside the body limit and the path guard (their 413 and 422 are seen).

What an entry holds, and where it comes from:

* `actor`, `token_id`: `scope["state"]["actor"]` (`app.api.access.Actor`, set as soon as the
  caller's token was read); for a login (`/auth/login`, `/auth/token`) without one, the
  username it tried (`request.state.audit_username`, set by the route).
* `client_ip`: the peer, or the first untrusted `X-Forwarded-For` hop behind
  `FORWARDED_ALLOW_IPS` (as the rate limits count it).
* `path` (never the query string), `project` (`?project=`, else DEFAULT_PROJECT on LXD
  routes, null on auth/users/audit), `target` (the matched route's path up to its last
  parameter: `instances/web1`, `users/alice`, `instances/web1/snapshots/s1`; null without one).
* `status`, `duration_ms`, `operation_id` (`note_operation()`, called by the route's answer),
  and `detail`: what the route noted (`note_detail()`, e.g. the file path of a file upload),
  and the error `code` of a 4xx/5xx answer (`/etc/motd [not_found]` with both); nothing of a
  body otherwise.

Never a request body, a password, a token or a query string.
"""

from __future__ import annotations

import json
import re
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import structlog
from asgi_correlation_id.context import correlation_id
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import API_V1_PREFIX
from app.core.errors import code_for_status
from app.core.ratelimit import TrustedProxies, client_ip

log = structlog.get_logger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATHS = frozenset({f"{API_V1_PREFIX}/auth/login", f"{API_V1_PREFIX}/auth/token"})
# Routes that are not about an LXD project: their entries have no project by default.
NO_PROJECT_PREFIXES = tuple(f"{API_V1_PREFIX}/{area}" for area in ("auth", "users", "audit"))
_ERROR_BODY_MAX = 64 * 1024  # an error body larger than this is not read for its code
_PARAM = re.compile(r"^\{([^}:]+)(?::[^}]*)?\}$")


class _Note:
    __slots__ = ("detail", "operation_id")

    def __init__(self) -> None:
        self.operation_id: str | None = None
        self.detail: str | None = None


_current: ContextVar[_Note | None] = ContextVar("audit_note", default=None)


def note_operation(operation_id: str) -> None:
    """The LXD operation the current request started (its entry's `operation_id`)."""
    note = _current.get()
    if note is not None:
        note.operation_id = operation_id


def note_detail(text: str) -> None:
    """What the current request was about, in short (its entry's `detail`; e.g. the file path
    of a file upload). Never a secret and never a body: the entry is kept for years."""
    note = _current.get()
    if note is not None:
        note.detail = text


_DETAIL_NOTE_MAX = 480  # the column holds 512: room left for the error code


def _detail(noted: str | None, error_code: str | None) -> str | None:
    if noted is None:
        return error_code
    noted = noted[:_DETAIL_NOTE_MAX]
    return f"{noted} [{error_code}]" if error_code else noted


def route_target(scope: Scope) -> str | None:
    """`instances/web1` for `/api/v1/instances/{name}/start`: the matched route's template up
    to its last path parameter, filled in. None without a matched route or parameters."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    params: dict[str, Any] = scope.get("path_params") or {}
    if not isinstance(template, str) or not params:
        return None
    segments = template.removeprefix(API_V1_PREFIX).strip("/").split("/")
    last = max((i for i, seg in enumerate(segments) if _PARAM.match(seg)), default=-1)
    if last < 0:
        return None
    filled = []
    for segment in segments[: last + 1]:
        match = _PARAM.match(segment)
        filled.append(str(params.get(match.group(1), "")) if match else segment)
    return "/".join(filled)


def entry_project(scope: Scope, default: str) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    if "project=" in query:
        values = parse_qs(query).get("project")
        if values and values[0]:
            return values[0]
    path: str = scope.get("path", "")
    if not path.startswith(API_V1_PREFIX + "/") or path.startswith(NO_PROJECT_PREFIXES):
        return None
    return default


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._trusted: tuple[str, TrustedProxies] | None = None

    def _proxies(self, spec: str) -> TrustedProxies:
        if self._trusted is None or self._trusted[0] != spec:
            self._trusted = (spec, TrustedProxies(spec))
        return self._trusted[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        application = scope.get("app")
        audit = getattr(getattr(application, "state", None), "audit_log", None)
        if audit is None:  # an app that was not started (no lifespan): nothing to write to
            await self.app(scope, receive, send)
            return
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # shared with every Request made of this scope
        note = _Note()
        token = _current.set(note)
        status: int | None = None
        error_body: bytearray | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, error_body
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400:
                    error_body = bytearray()
                actor = state.get("actor")
                if note.operation_id and actor is not None:
                    # Before the client has its 202: its next request may ask who started it.
                    audit.note_requested_by(note.operation_id, actor.username)
            elif (
                message["type"] == "http.response.body"
                and error_body is not None
                and len(error_body) <= _ERROR_BODY_MAX
            ):
                error_body += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            status = status if status is not None and status >= 500 else 500
            raise
        finally:
            _current.reset(token)
            try:
                detail = _detail(note.detail, _error_code(status, error_body))
                audit.submit(
                    self._entry(
                        scope, state, started_at, started, status, note.operation_id, detail
                    )
                )
            except Exception:  # the client has its answer; a bug here must not end the server
                log.exception("audit.record_failed", path=scope.get("path"))

    def _entry(
        self,
        scope: Scope,
        state: dict[str, Any],
        started_at: datetime,
        started: float,
        status: int | None,
        operation_id: str | None,
        detail: str | None,
    ) -> dict[str, Any]:
        settings = scope["app"].state.settings
        actor = state.get("actor")
        username = actor.username if actor is not None else None
        if username is None and scope.get("path") in LOGIN_PATHS:
            username = state.get("audit_username")
        peer = scope.get("client")
        return {
            "time": started_at,
            "actor": username,
            "token_id": actor.token_id if actor is not None else None,
            "client_ip": client_ip(
                peer[0] if peer else None,
                Headers(scope=scope),
                self._proxies(settings.FORWARDED_ALLOW_IPS),
            ),
            "request_id": correlation_id.get(),
            "method": scope["method"],
            "path": scope.get("path", ""),
            "project": entry_project(scope, settings.DEFAULT_PROJECT),
            "target": route_target(scope),
            "status": status,
            "operation_id": operation_id,
            "duration_ms": (time.perf_counter() - started) * 1000,
            "detail": detail,
        }


def _error_code(status: int | None, body: bytearray | None) -> str | None:
    """The `code` of an error answer (our one error shape), else one made from the status."""
    if status is None or status < 400:
        return None
    if body:
        try:
            code = json.loads(bytes(body)).get("code")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, str) and code:
            return code
    return code_for_status(status)
