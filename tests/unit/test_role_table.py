"""Every route has a role, and it is API.md's (see `tests/support/role_table.py`).

1. Static: each route of the app is in the table, and the least role its dependencies declare
   (`require_role(...)`/`require_ws_role(...)` carry `.min_role`) equals the table's.
2. Live, against a unit app with a mocked LXD: each role-protected HTTP route answers 401
   without a token and 403 with a token of every lower role; each WebSocket route closes with
   4401 without a token and 4403 for a lower role. The auth check must come before anything
   else the route does (a 404 from the mocked LXD instead of a 401 means the route asked LXD
   before checking who is asking).
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from app.core.security import Role
from app.main import create_app
from tests.support.auth import auth_for
from tests.support.fake_lxd import fake_lxd_handler
from tests.support.role_table import LOGIN, PUBLIC, ROLE_LEVELS, ROLE_TABLE, expected_scope
from tests.support.routes import iter_routes

with warnings.catch_warnings():  # Starlette would like httpx2 under its TestClient
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

DUMMY_PARAMS = {
    "name": "a1",
    "snapshot": "s1",
    "backup": "b1",
    "file": "lxc.log",
    "pool": "p1",
    "volume": "v1",
    "network": "n1",
    "profile": "pr1",
    "project": "p1",
    "fingerprint": "abc123",
    "alias": "a1",
    "operation_id": str(uuid.UUID(int=1)),
    "username": "someone",
    "token_id": "tok_0123456789abcdef",
}


def _requirements(dependant: Dependant | None) -> list[tuple[Role, str]]:
    """(min_role, scope) of every role requirement in the dependency tree."""
    found: list[tuple[Role, str]] = []

    def walk(node: Dependant) -> None:
        role = getattr(node.call, "min_role", None)
        if isinstance(role, Role):
            found.append((role, str(getattr(node.call, "scope", "?"))))
        for sub in node.dependencies:
            walk(sub)

    if dependant is not None:
        walk(dependant)
    return found


def declared_role(dependant: Dependant | None) -> str:
    """The strictest `min_role` anywhere in the dependency tree; "public" when there is none."""
    found = _requirements(dependant)
    return max(found, key=lambda r: r[0].level)[0].value if found else PUBLIC


def declared_scopes(dependant: Dependant | None) -> set[str]:
    """Where the requirements look the role up: "global" and/or "project"."""
    return {scope for _, scope in _requirements(dependant)}


def lower_roles(role: str) -> list[str]:
    return [r.value for r in Role if r.level < ROLE_LEVELS[role]]


def fill(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: DUMMY_PARAMS.get(m.group(1), "x1"), path)


@pytest.fixture(scope="module")
def listed_app() -> FastAPI:
    """An app to read the route table from (no lifespan: nothing is started)."""
    from app.core.config import Settings

    return create_app(Settings(_env_file=None, JWT_SECRET="r" * 48))


def test_every_route_is_in_the_table_with_its_role(listed_app: FastAPI) -> None:
    missing: list[str] = []
    wrong: list[str] = []
    for method, path, dependant in iter_routes(listed_app):
        expected = ROLE_TABLE.get((method, path))
        if expected is None:
            missing.append(f"{method} {path} (declares {declared_role(dependant)})")
            continue
        actual = declared_role(dependant)
        if actual != expected:
            wrong.append(f"{method} {path}: declares {actual}, API.md says {expected}")
    assert not missing, "routes missing from tests/support/role_table.py:\n" + "\n".join(missing)
    assert not wrong, "routes with the wrong role:\n" + "\n".join(wrong)


def test_every_route_checks_the_role_where_api_md_says(listed_app: FastAPI) -> None:
    """Project-scoped routes check the role in the request's project, server-wide routes the
    global role (API.md, "Per-project roles"); never both, never neither."""
    wrong: list[str] = []
    for method, path, dependant in iter_routes(listed_app):
        if ROLE_TABLE.get((method, path), PUBLIC) == PUBLIC:
            continue
        want = expected_scope(method, path)
        if (got := declared_scopes(dependant)) != {want}:
            wrong.append(f"{method} {path}: checks {sorted(got)}, expected {want}")
    assert not wrong, "\n".join(wrong)


def test_project_scoped_routes_take_the_project(listed_app: FastAPI) -> None:
    """A route that checks the role in a project names that project: `?project=`, or the path
    (`/projects/{project}`), or the operation it acts on."""
    missing: list[str] = []
    for method, path, dependant in iter_routes(listed_app):
        if ROLE_TABLE.get((method, path), PUBLIC) == PUBLIC or method == "WS":
            continue
        if expected_scope(method, path) != "project" or dependant is None:
            continue
        names = {p.alias for p in _all_params(dependant)}
        if not names & {"project", "operation_id"}:
            missing.append(f"{method} {path}")
    assert not missing, "project-scoped routes without a project:\n" + "\n".join(missing)


def _all_params(dependant: Dependant) -> list[Any]:
    params = [*dependant.query_params, *dependant.path_params]
    for sub in dependant.dependencies:
        params.extend(_all_params(sub))
    return params


def test_the_table_uses_known_roles() -> None:
    assert set(ROLE_TABLE.values()) <= set(ROLE_LEVELS)


def test_declared_role_reads_the_dependency_tree(listed_app: FastAPI) -> None:
    routes = {(m, p): d for m, p, d in iter_routes(listed_app)}
    assert declared_role(routes[("GET", "/health/live")]) == PUBLIC
    assert declared_role(routes[("POST", "/api/v1/auth/login")]) == PUBLIC
    assert declared_role(routes[("GET", "/api/v1/auth/me")]) == LOGIN
    assert declared_role(routes[("GET", "/api/v1/instances")]) == "viewer"
    assert declared_role(routes[("DELETE", "/api/v1/users/{username}")]) == "admin"


async def test_protected_http_routes_answer_401_and_403(
    unit_app: FastAPI, unit_client: httpx.AsyncClient, unit_auth_headers: Callable[..., Any]
) -> None:
    problems: list[str] = []
    checked = 0
    for method, path, _ in iter_routes(unit_app):
        role = ROLE_TABLE.get((method, path), PUBLIC)
        if method == "WS" or role == PUBLIC:
            continue
        url = fill(path)
        anonymous = await unit_client.request(method, url)
        if anonymous.status_code != 401 or "WWW-Authenticate" not in anonymous.headers:
            problems.append(f"{method} {path} without a token: {anonymous.status_code}")
        for lower in lower_roles(role):
            reply = await unit_client.request(method, url, headers=unit_auth_headers(lower))
            # No role at all in the project: the project does not exist for the caller.
            unseen = lower == "none" and expected_scope(method, path) == "project"
            status, code = (404, "not_found") if unseen else (403, "forbidden")
            if reply.status_code != status:
                problems.append(f"{method} {path} as {lower}: {reply.status_code}")
            elif reply.json().get("code") != code:
                problems.append(f"{method} {path} as {lower}: code {reply.json().get('code')}")
        checked += 1
    assert checked >= 10
    assert not problems, "\n".join(problems)


def test_protected_websocket_routes_close_4401_and_4403(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(fake_lxd_handler))
    ws_routes = [
        (p, ROLE_TABLE.get(("WS", p), PUBLIC)) for m, p, _ in iter_routes(app) if m == "WS"
    ]
    if not ws_routes:
        pytest.skip("no WebSocket route yet")
    problems: list[str] = []

    def close_code(client: TestClient, url: str) -> int | None:
        try:
            with client.websocket_connect(url) as ws:
                message = ws.receive()
                return int(message.get("code", 0)) if message["type"] == "websocket.close" else None
        except WebSocketDisconnect as exc:
            return exc.code

    with TestClient(app) as client:
        assert client.portal is not None
        auth = client.portal.call(auth_for, app)
        for path, role in ws_routes:
            if role == PUBLIC:
                continue
            url = fill(path)
            for token, want in [(None, 4401), ("not-a-jwt", 4401)] + [
                (auth.token(lower), 4404 if lower == "none" else 4403)
                for lower in lower_roles(role)
            ]:
                full = url + (f"?token={token}" if token else "")
                got = close_code(client, full)
                if got != want:
                    problems.append(f"WS {path} token={'lower' if want > 4401 else token}: {got}")
    assert not problems, "\n".join(problems)
