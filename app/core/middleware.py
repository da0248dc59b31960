"""Pure ASGI middleware: one structured log line per request (HTTP and WebSocket)."""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import redact_text

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
                query=redact_text(query) if query else None,
                status=outcome["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=client[0] if client else None,
            )
