"""WebSocket authentication: `?token=`, close codes 4401/4403, Origin against CORS_ORIGINS."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from app.api.deps import WSOperatorUser, WSViewerUser
from app.main import create_app
from tests.support.auth import AuthHelper, auth_for
from tests.support.fake_lxd import fake_lxd_handler

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def _app(settings: Any) -> FastAPI:
    app = create_app(settings, lxd_transport=httpx.MockTransport(fake_lxd_handler))

    @app.websocket("/test/ws/viewer")
    async def viewer_ws(websocket: WebSocket, user: WSViewerUser) -> None:
        await websocket.accept()
        await websocket.send_json({"user": user.username, "role": user.role})
        await websocket.close()

    @app.websocket("/test/ws/operator")
    async def operator_ws(websocket: WebSocket, user: WSOperatorUser) -> None:
        await websocket.accept()
        await websocket.send_json({"user": user.username, "role": user.role})
        await websocket.close()

    return app


@pytest.fixture
def ws_client(
    make_settings: Callable[..., Any], request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, AuthHelper]]:
    overrides = getattr(request, "param", {})
    app = _app(make_settings(**overrides))
    with TestClient(app) as client:
        assert client.portal is not None
        yield client, client.portal.call(auth_for, app)


def outcome(client: TestClient, url: str, **kwargs: Any) -> Any:
    """The first JSON message, or the close code."""
    try:
        with client.websocket_connect(url, **kwargs) as ws:
            message = ws.receive()
            if message["type"] == "websocket.close":
                return message["code"]
            return json.loads(message["text"])
    except WebSocketDisconnect as exc:
        return exc.code


def test_token_in_query(ws_client: tuple[TestClient, AuthHelper]) -> None:
    client, auth = ws_client
    got = outcome(client, f"/test/ws/operator?token={auth.token('operator')}")
    assert got == {"user": "test-operator", "role": "operator"}
    assert outcome(client, f"/test/ws/operator?token={auth.token('admin')}")["role"] == "admin"


def test_bearer_header_works_too(ws_client: tuple[TestClient, AuthHelper]) -> None:
    client, auth = ws_client
    got = outcome(client, "/test/ws/viewer", headers=auth.headers("viewer"))
    assert got["user"] == "test-viewer"


def test_no_or_bad_token_closes_4401(ws_client: tuple[TestClient, AuthHelper]) -> None:
    client, auth = ws_client
    assert outcome(client, "/test/ws/viewer") == 4401
    assert outcome(client, "/test/ws/viewer?token=garbage") == 4401
    refresh_like = auth.token("viewer").replace("a", "b", 1)
    assert outcome(client, f"/test/ws/viewer?token={refresh_like}") == 4401


def test_role_too_low_closes_4403(ws_client: tuple[TestClient, AuthHelper]) -> None:
    client, auth = ws_client
    assert outcome(client, f"/test/ws/operator?token={auth.token('viewer')}") == 4403


def test_disabled_user_closes_4401(ws_client: tuple[TestClient, AuthHelper]) -> None:
    client, auth = ws_client
    token = auth.token("operator")

    async def disable() -> None:
        from sqlalchemy import update

        from app.db.models import User

        async with auth.app.state.db_sessionmaker() as session:
            await session.execute(
                update(User).where(User.username == "test-operator").values(is_active=False)
            )
            await session.commit()

    assert client.portal is not None
    client.portal.call(disable)
    assert outcome(client, f"/test/ws/operator?token={token}") == 4401


@pytest.mark.parametrize(
    "ws_client",
    [{"CORS_ORIGINS": "https://ui.example.com,https://admin.example.com"}],
    indirect=True,
)
def test_origin_is_checked_when_cors_is_restricted(
    ws_client: tuple[TestClient, AuthHelper],
) -> None:
    client, auth = ws_client
    url = f"/test/ws/viewer?token={auth.token('viewer')}"
    evil = outcome(client, url, headers={"Origin": "https://evil.example.net"})
    assert evil == 4403
    good = outcome(client, url, headers={"Origin": "https://ui.example.com"})
    assert good["user"] == "test-viewer"
    # Not a browser (no Origin): nothing to protect against, the token decides.
    assert outcome(client, url)["user"] == "test-viewer"


def test_any_origin_with_wildcard_cors(ws_client: tuple[TestClient, AuthHelper]) -> None:
    client, auth = ws_client
    url = f"/test/ws/viewer?token={auth.token('viewer')}"
    assert outcome(client, url, headers={"Origin": "https://anything.example"})["user"]


def test_token_never_reaches_the_log(
    ws_client: tuple[TestClient, AuthHelper], capsys: pytest.CaptureFixture[str]
) -> None:
    client, auth = ws_client
    token = auth.token("viewer")
    outcome(client, f"/test/ws/viewer?token={token}")
    outcome(client, f"/test/ws/operator?token={token}")
    out = capsys.readouterr()
    assert token not in out.out + out.err
