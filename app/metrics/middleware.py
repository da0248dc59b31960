"""Pure ASGI middleware: count and time every HTTP request by its route template."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import API_V1_PREFIX

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's full path template (`/api/v1/instances/{name}`), `unmatched`
    without one (a 404 for an unknown path: its path is never a label).

    FastAPI (0.165) resolves routers included into routers lazily: `scope["route"]` is then
    the route as its own router declared it (`/instances/{name}`), and the full template is in
    FastAPI's effective route context. Without that, the `/api/v1` prefix is put back."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if not isinstance(template, str) or not template:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if not isinstance(template, str) or not template:
            return UNMATCHED
        path: str = scope.get("path", "")
        if path.startswith(API_V1_PREFIX + "/") and not template.startswith(API_V1_PREFIX):
            template = API_V1_PREFIX + template
    return template


class MetricsMiddleware:
    """Counts each HTTP request once its response was sent (or it failed: 500), in
    `scope["app"].state.metrics`. WebSockets are left to the sessions gauge."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics: Any = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                elapsed = time.perf_counter() - began
                metrics.observe_http(scope["method"], route_template(scope), status, elapsed)
