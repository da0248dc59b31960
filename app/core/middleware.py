"""Pure ASGI middleware: one structured log line per request (HTTP and WebSocket), and a guard
against names that smuggle separators past the router."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import structlog
from asgi_correlation_id.context import correlation_id
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import redact_query

log = structlog.get_logger("app.request")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        outcome: dict[str, Any] = {"status": None}

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                outcome["status"] = message["status"]
            elif kind == "websocket.accept":
                outcome["status"] = 101
            elif kind == "websocket.close" and outcome["status"] is None:
                outcome["status"] = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            outcome["status"] = outcome["status"] or 500
            raise
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            client = scope.get("client")
            log.info(
                "http.request" if scope["type"] == "http" else "ws.session",
                method=scope.get("method", "WS"),
                path=scope.get("path", ""),
                query=redact_query(query) if query else None,
                status=outcome["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=client[0] if client else None,
            )


# An encoded separator, backslash, NUL or a dot segment in the raw path: Starlette would decode
# `%2F` before routing, so `a%2Fb` would reach another route instead of failing as a bad name.
_SUSPICIOUS_RAW_PATH = re.compile(r"%(?:2f|5c|00)|(?:^|/)(?:\.|%2e){1,2}(?:/|$)", re.IGNORECASE)


class RawPathGuardMiddleware:
    """422 for paths that try to smuggle a separator or a dot segment into a name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            raw = scope.get("raw_path") or scope.get("path", "").encode()
            if _SUSPICIOUS_RAW_PATH.search(raw.decode("latin-1")):
                await self._refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        detail = "Invalid name in path: separators and dot segments are not allowed"
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": detail})
            return
        request_id = correlation_id.get() or ""
        body = json.dumps({"detail": detail, "code": "invalid_name", "request_id": request_id})
        response = Response(body, status_code=422, media_type="application/json")
        await response(scope, receive, send)
