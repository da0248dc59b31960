"""api.http and the Postman collection cover every route, and only real ones."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from scripts import build_postman
from scripts.http_collection import load, substitute
from tests.support.routes import app_routes, match_route, request_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def routes() -> set[tuple[str, str]]:
    app: FastAPI = create_app(Settings(_env_file=None, JWT_SECRET="r" * 48))
    return app_routes(app)


class FakeResponse:
    """Stands in for earlier responses when only the shape of a URL matters."""

    def __init__(self) -> None:
        self.headers = {"ETag": "etag"}

    def json(self) -> Any:
        return FakeBody()


class FakeBody(dict[str, Any]):
    def __getitem__(self, key: str) -> Any:
        return FakeBody() if key == "config" else "x" + uuid.uuid4().hex[:6]


def http_requests() -> list[tuple[str, str]]:
    collection = load(REPO / "api.http")
    names = {r.name for r in collection.requests if r.name}
    responses = dict.fromkeys(names, FakeResponse())
    found = []
    for request in collection.requests:
        url = substitute(request.url, collection.variables, responses)
        method = "WS" if request.method == "WEBSOCKET" else request.method
        found.append((method, request_path(url)))
    return found


def postman_requests() -> list[tuple[str, str]]:
    collection = json.loads((REPO / "lxd-api.postman_collection.json").read_text())
    found = []
    for folder in collection["item"]:
        for item in folder["item"]:
            request = item["request"]
            raw = request["url"]["raw"]
            method = "WS" if raw.startswith("{{wsBaseUrl}}") else request["method"]
            path = "/" + "/".join(request["url"]["path"])
            found.append((method, path))
    return found


@pytest.mark.parametrize("source", ["api.http", "postman"])
def test_every_request_is_a_real_route_and_every_route_is_there(
    routes: set[tuple[str, str]], source: str
) -> None:
    requests = http_requests() if source == "api.http" else postman_requests()
    reached = set()
    for method, path in requests:
        route = match_route(routes, method, path)
        assert route is not None, f"{source}: {method} {path} is not a route of the app"
        reached.add(route)
    missing = sorted(routes - reached)
    assert not missing, f"{source} lacks requests for: {missing}"


def test_postman_collection_is_built_from_api_http() -> None:
    committed = (REPO / "lxd-api.postman_collection.json").read_text()
    assert committed == build_postman.render(), (
        "lxd-api.postman_collection.json is stale: run `python3 scripts/build_postman.py`"
    )


def test_postman_collection_shape() -> None:
    collection = json.loads((REPO / "lxd-api.postman_collection.json").read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert collection["auth"]["type"] == "bearer"
    variables = {v["key"] for v in collection["variable"]}
    assert {"baseUrl", "accessToken", "refreshToken", "username", "password"} <= variables
    login = collection["item"][1]["item"][0]
    script = "\n".join(login["event"][0]["script"]["exec"])
    assert 'pm.collectionVariables.set("accessToken"' in script
    assert 'pm.collectionVariables.set("refreshToken"' in script
