"""Matching the requests of api.http and the Postman collection with the app's routes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi import FastAPI

from tests.unit.test_role_table import iter_routes


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
