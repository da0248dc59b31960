"""Pure ASGI middleware: request bodies over a size limit are refused with 413 before any
route, dependency (auth included) or parser sees them.

A `Content-Length` over the limit is refused at once, without reading a byte. A body without
one (chunked) is counted while it streams: at the limit, reading stops, the client gets the 413
and the app is told the client left (`http.disconnect`), so nothing past the limit is ever held
in memory or parsed. If the app had already started its response, reading just stops.

Limits, the first that applies: `route_limits` (route templates matched on the whole path, e.g.
`FILE_UPLOAD_ROUTE` with `MAX_FILE_UPLOAD_BYTES`), `PATH_LIMITS` below (path prefixes),
`MAX_AUTH_BODY_BYTES` under /api/v1/auth/ (public routes with small JSON bodies), and
`MAX_BODY_BYTES` elsewhere.
"""

from __future__ import annotations

import re

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_response

AUTH_PREFIX = "/api/v1/auth/"

# Path prefixes with a limit of their own (bytes), for routes that take big bodies (an image
# or backup upload would). The longest matching prefix wins over the two settings.
PATH_LIMITS: dict[str, int] = {
    # "/api/v1/images/upload": 8 * 1024**3,
}

# The route that takes file uploads (streamed to LXD): its limit is MAX_FILE_UPLOAD_BYTES.
FILE_UPLOAD_ROUTE = "/api/v1/instances/{name}/files"
_TEMPLATE_PARAM = re.compile(r"\\\{[^/}]+\\\}")  # `{name}` once re.escape()d


def route_pattern(template: str) -> re.Pattern[str]:
    """`/a/{name}/b` -> a pattern for the whole path, `{name}` being one non-empty segment."""
    return re.compile("^" + _TEMPLATE_PARAM.sub("[^/]+", re.escape(template)) + "$")


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_auth_body_bytes: int,
        path_limits: dict[str, int] | None = None,
        route_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_auth_body_bytes = max_auth_body_bytes
        limits = PATH_LIMITS if path_limits is None else path_limits
        self.path_limits = sorted(limits.items(), key=lambda item: len(item[0]), reverse=True)
        self.route_limits = [(route_pattern(t), limit) for t, limit in (route_limits or {}).items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.route_limits:
            if pattern.match(path):
                return limit
        for prefix, limit in self.path_limits:
            if path.startswith(prefix):
                return limit
        if path.startswith(AUTH_PREFIX) or path == AUTH_PREFIX.rstrip("/"):
            return self.max_auth_body_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return

        received = 0
        over = False  # the limit was crossed: nothing more is read
        started = False  # the app's response has begun
        refused = False  # we sent the 413: the app's own answer goes nowhere

        async def limited_receive() -> Message:
            nonlocal received, over, refused
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received <= limit:
                return message
            over = True
            if not started:
                refused = True
                await _refuse(scope, receive, send, limit)
            # The chunk that crossed the limit is dropped; the app sees the client leave.
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except ClientDisconnect:
            if not over:
                raise
            # A route that reads the stream itself (`request.stream()`) met the disconnect we
            # made up: the client has its 413 (or the response went on), there is no error.


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed one before we run
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    detail = f"Request body too large: at most {limit} bytes"
    # Close the connection: the rest of the body is never read, not even to skip it.
    response = error_response(413, detail, "payload_too_large", {"Connection": "close"})
    await response(scope, receive, send)
