"""Routes join the app as plain routes (app/api/routing.py): no router is resolved per request,
the instance routes are matched first, and every v1 path is under `/api/v1`."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route

from app.api.routing import add_routes
from app.api.v1.api import V1_ROUTERS
from app.core.config import API_V1_PREFIX
from app.main import create_app


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("JWT_SECRET", "x" * 48)
    return create_app()


def test_the_app_holds_only_plain_routes(app: FastAPI) -> None:
    kinds = {type(route) for route in app.router.routes}
    assert kinds <= {APIRoute, APIWebSocketRoute, Route, Mount}, kinds  # no included router


def test_instance_routes_are_matched_before_the_rest(app: FastAPI) -> None:
    paths = [route.path for route in app.router.routes if isinstance(route, APIRoute)]
    v1 = [path for path in paths if path.startswith(API_V1_PREFIX)]
    assert v1[0] == f"{API_V1_PREFIX}/instances"
    first_other = next(
        i for i, path in enumerate(v1) if not path.startswith(f"{API_V1_PREFIX}/inst")
    )
    assert f"{API_V1_PREFIX}/instances/{{name}}" in v1[:first_other]
    # the aliases come before /images/{fingerprint}, which would take `aliases` as a name
    assert paths.index(f"{API_V1_PREFIX}/images/aliases") < paths.index(
        f"{API_V1_PREFIX}/images/{{fingerprint}}"
    )


def test_every_v1_route_is_under_the_prefix() -> None:
    for router in V1_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute | APIWebSocketRoute)
            assert route.path.startswith(f"{API_V1_PREFIX}/"), route.path


def test_a_router_that_includes_a_router_is_refused() -> None:
    inner, outer = APIRouter(prefix="/x"), APIRouter()

    @inner.get("/y")
    def y() -> None: ...

    outer.include_router(inner)
    with pytest.raises(TypeError, match="holds routes, not routers"):
        add_routes(FastAPI(), outer)
