"""The app's routes: every (method, path template, dependant) it serves (`iter_routes`, which
the role-table test walks), and matching the requests of api.http and the Postman collection
with them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route

# FastAPI >= 0.16x keeps included routers lazily (`app.routes` holds them unexpanded);
# `iter_route_contexts` walks them. Older FastAPI: `app.routes` is already flat.
_iter_route_contexts: Any = getattr(fastapi.routing, "iter_route_contexts", None)


def iter_routes(app: FastAPI) -> Iterator[tuple[str, str, Dependant | None]]:
    """(method or "WS", path template, dependant) for every route the app serves."""
    contexts: Any = _iter_route_contexts(app.routes) if _iter_route_contexts else app.routes
    for ctx in contexts:
        original = getattr(ctx, "original_route", ctx)
        path = getattr(ctx, "path_format", None) or ctx.path
        dependant = getattr(ctx, "dependant", None) or getattr(original, "dependant", None)
        if isinstance(original, APIWebSocketRoute):
            yield "WS", path, dependant
        elif isinstance(original, Mount):  # /static: the docs' assets, files only
            yield "GET", path, None
        elif isinstance(original, APIRoute | Route):
            for method in sorted(set(ctx.methods or ()) - {"HEAD"}):
                yield method, path, dependant
        else:
            raise AssertionError(f"unexpected route type {type(original).__name__} at {path}")


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method or "WS", path template) of every route, without the docs' own routes."""
    skip = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static/{path}"}
    return {(method, path) for method, path, _ in iter_routes(app) if path not in skip}


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$")


def match_route(routes: set[tuple[str, str]], method: str, path: str) -> tuple[str, str] | None:
    """The route a concrete request reaches: among matching templates, the most literal one
    (as the router prefers `/images/aliases` over `/images/{fingerprint}`)."""
    candidates = [
        (route_method, template)
        for route_method, template in routes
        if route_method == method and _pattern(template).match(path)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda route: route[1].count("/") * 100 - route[1].count("{"))


def request_path(url: str) -> str:
    """`{{baseUrl}}/api/v1/x/{{name}}?q=1` with variables filled -> `/api/v1/x/value`."""
    return urlsplit(url).path
