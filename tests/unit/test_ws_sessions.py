"""The WebSocket session registry (`app.api.sessions`): the per-user cap (4429) and the end of
the sessions of a user cut off while connected (4401/4403), by polling the user store."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.api import sessions
from app.api.deps import WSViewerUser
from app.api.sessions import SessionRegistry, close_code_for_standing, ws_sessions
from app.api.websockets import CLOSE_TOO_MANY_SESSIONS
from app.auth import service as auth_service
from app.core.security import WS_CLOSE_FORBIDDEN, WS_CLOSE_UNAUTHORIZED, Role, WebSocketAuthError
from app.db.api_tokens import TokenGrant
from app.db.models import utcnow
from app.main import create_app
from tests.support.auth import AuthHelper, auth_for
from tests.support.fake_lxd import fake_lxd_handler

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def standing(
    role: str = "operator", *, is_active: bool = True, token_version: int = 3
) -> SimpleNamespace:
    """What `close_code_for_standing()` reads of a `Standing`."""
    return SimpleNamespace(role=role, is_active=is_active, token_version=token_version, projects={})


# --- the decision --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "min_role", "expected"),
    [
        (standing(), Role.operator, None),
        (standing("admin"), Role.operator, None),
        (standing("viewer"), Role.viewer, None),
        (None, Role.viewer, WS_CLOSE_UNAUTHORIZED),  # deleted
        (standing(is_active=False), Role.viewer, WS_CLOSE_UNAUTHORIZED),  # disabled
        (standing(token_version=4), Role.viewer, WS_CLOSE_UNAUTHORIZED),  # password/role change
        (standing("viewer"), Role.operator, WS_CLOSE_FORBIDDEN),  # role too low, tokens stand
        (standing("viewer", token_version=4), Role.operator, WS_CLOSE_UNAUTHORIZED),
    ],
)
def test_close_code_for_standing(current: Any, min_role: Role, expected: int | None) -> None:
    got = close_code_for_standing(current, token_version=3, min_role=min_role, project="default")
    assert got == expected
    # The project is taken and, for now, does not change the answer.
    assert close_code_for_standing(current, token_version=3, min_role=min_role, project=None) == (
        expected
    )


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (TokenGrant("operator", None), None),  # a version change does not end a token's session
        (TokenGrant("viewer", None), WS_CLOSE_FORBIDDEN),  # the token's own role is too low
        (TokenGrant("operator", None, revoked=True), WS_CLOSE_UNAUTHORIZED),
        (
            TokenGrant("operator", None, expires_at=utcnow() - timedelta(seconds=1)),
            WS_CLOSE_UNAUTHORIZED,
        ),
        (None, WS_CLOSE_UNAUTHORIZED),  # deleted
    ],
)
def test_close_code_for_an_api_token_session(grant: Any, expected: int | None) -> None:
    got = close_code_for_standing(
        standing(token_version=4),
        token_version=3,
        min_role=Role.operator,
        project="default",
        grant=grant,
    )
    assert got == expected


# --- the registry, with fake sockets and a fake user store -----------------------------------
class FakeSocket:
    """What the registry and `close_socket()` use of a Starlette WebSocket."""

    def __init__(self) -> None:
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.scope: dict[str, Any] = {"path": "/api/v1/test/ws"}
        self.state = SimpleNamespace()
        self.app = SimpleNamespace(state=SimpleNamespace())
        self.closed = asyncio.Event()
        self.code: int | None = None

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.application_state = WebSocketState.DISCONNECTED
        self.code = code
        self.closed.set()


class Store:
    """`get_standing()` over a dict, counting the reads."""

    def __init__(self) -> None:
        self.users: dict[int, Any] = {}
        self.reads: list[int] = []
        self.down = False

    async def get_standing(self, engine: Any, user_id: int) -> Any:
        self.reads.append(user_id)
        if self.down:
            raise OSError("the database is down")
        return self.users.get(user_id)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    monkeypatch.setattr(sessions, "get_standing", fake.get_standing)
    return fake


@pytest.fixture(autouse=True)
def audited(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The audit entries the registry records (`app.audit.record` calls, without the app)."""
    entries: list[dict[str, Any]] = []

    def record(app: Any, **fields: Any) -> None:
        entries.append(fields)

    monkeypatch.setattr(sessions.audit, "record", record)
    return entries


def user(user_id: int = 1, version: int = 3) -> Any:
    return SimpleNamespace(id=user_id, username=f"u{user_id}", token_version=version)


async def hold(
    registry: SessionRegistry,
    ws: FakeSocket,
    account: Any,
    *,
    min_role: Role = Role.operator,
    until_closed: bool = True,
) -> str:
    """A route: holds its session until its socket is closed (or forever, like a route that
    misses the close), and says how its block ended."""
    async with registry.session(ws, user=account, min_role=min_role, project="default"):  # type: ignore[arg-type]
        if until_closed:
            await ws.closed.wait()
            return "ended"
        await asyncio.Event().wait()
    return "cancelled"


async def test_a_disabled_user_is_closed_4401(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16)  # type: ignore[arg-type]
    ws = FakeSocket()
    task = asyncio.create_task(hold(registry, ws, user()))
    await asyncio.sleep(0)
    assert registry.state() == {1: 1}
    await registry.check()
    assert ws.code is None  # still allowed
    store.users[1] = standing(is_active=False)
    await registry.check()
    assert await asyncio.wait_for(task, 1) == "ended"
    assert ws.code == WS_CLOSE_UNAUTHORIZED
    assert registry.state() == {}


async def test_sessions_are_audited_once_opened_and_when_ended(
    store: Store, audited: list[dict[str, Any]]
) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16)  # type: ignore[arg-type]

    # Opened, then cut off: a 101 entry with what it is, then the close code and how long.
    ws = FakeSocket()
    async with registry.session(ws, user=user(), min_role=Role.operator, project="p1") as held:  # type: ignore[arg-type]
        held.opened("sh -c 'id'", operation_id="op-1")
        store.users[1] = standing(is_active=False)
        await registry.check()
        await ws.closed.wait()
    assert [(e["status"], e["detail"], e["operation_id"], e["project"]) for e in audited] == [
        (101, "sh -c 'id'", "op-1", "p1"),
        (WS_CLOSE_UNAUTHORIZED, "ended: Token is no longer valid", None, "p1"),
    ]
    assert audited[1]["duration_ms"] >= 0
    assert all(e["connection"] is ws for e in audited)

    # Never started: one entry with the code it was closed with (1000: the client left).
    audited.clear()
    store.users[1] = standing()
    bad, left = FakeSocket(), FakeSocket()
    async with registry.session(bad, user=user(), min_role=Role.operator, project=None):  # type: ignore[arg-type]
        await sessions.close_socket(bad, 4400, "no command")  # type: ignore[arg-type]
    async with registry.session(left, user=user(), min_role=Role.viewer, project="default"):  # type: ignore[arg-type]
        pass
    assert [(e["status"], e["detail"], e["project"]) for e in audited] == [
        (4400, "closed before it started", "*"),  # project None: every project
        (1000, "closed before it started", "default"),
    ]

    # Opened and ended by itself: the 101 entry only.
    audited.clear()
    async with registry.session(left, user=user(), min_role=Role.viewer, project="default") as held:  # type: ignore[arg-type]
        held.opened("events: lifecycle")
    assert [e["status"] for e in audited] == [101]


async def test_role_too_low_is_4403_and_other_sessions_stay(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16)  # type: ignore[arg-type]
    shell, events = FakeSocket(), FakeSocket()
    tasks = [
        asyncio.create_task(hold(registry, shell, user(), min_role=Role.operator)),
        asyncio.create_task(hold(registry, events, user(), min_role=Role.viewer)),
    ]
    await asyncio.sleep(0)
    store.users[1] = standing("viewer")  # the same token version: only the role moved
    await registry.check()
    assert await asyncio.wait_for(tasks[0], 1) == "ended"
    assert shell.code == WS_CLOSE_FORBIDDEN
    assert events.code is None
    assert registry.state() == {1: 1}
    store.users.pop(1)  # deleted
    await registry.check()
    assert await asyncio.wait_for(tasks[1], 1) == "ended"
    assert events.code == WS_CLOSE_UNAUTHORIZED


async def test_one_read_per_connected_user(store: Store) -> None:
    store.users.update({1: standing(), 2: standing()})
    registry = SessionRegistry(None, max_per_user=16)  # type: ignore[arg-type]
    await registry.check()
    assert store.reads == []  # nobody connected: no query at all
    sockets = [FakeSocket() for _ in range(5)]
    tasks = [
        asyncio.create_task(hold(registry, ws, user(1 if i < 4 else 2)))
        for i, ws in enumerate(sockets)
    ]
    await asyncio.sleep(0)
    await registry.check()
    assert sorted(store.reads) == [1, 2]
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*tasks)


async def test_the_cap_refuses_with_4429_and_frees_on_close(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=2)  # type: ignore[arg-type]
    held = [FakeSocket(), FakeSocket()]
    tasks = [asyncio.create_task(hold(registry, ws, user())) for ws in held]
    await asyncio.sleep(0)
    with pytest.raises(WebSocketAuthError) as refused:
        await hold(registry, FakeSocket(), user())
    assert refused.value.code == CLOSE_TOO_MANY_SESSIONS == 4429
    assert registry.count(1) == 2
    # Another user is not counted against this one.
    other = FakeSocket()
    other_task = asyncio.create_task(hold(registry, other, user(2)))
    await asyncio.sleep(0)
    assert registry.state() == {1: 2, 2: 1}
    await held[0].close()
    await tasks[0]
    again = FakeSocket()
    tasks.append(asyncio.create_task(hold(registry, again, user())))
    await asyncio.sleep(0)
    assert registry.count(1) == 2
    for ws in (held[1], again, other):
        await ws.close()
    await asyncio.gather(*tasks, other_task)
    assert registry.state() == {}


async def test_a_route_that_misses_the_close_is_cancelled(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16, cancel_grace=0.2)  # type: ignore[arg-type]
    ws = FakeSocket()
    task = asyncio.create_task(hold(registry, ws, user(), until_closed=False))
    await asyncio.sleep(0)
    store.users[1] = standing(token_version=4)
    started = time.monotonic()
    await registry.check()
    assert await asyncio.wait_for(task, 2) == "cancelled"  # ended normally, not with an error
    assert 0.15 < time.monotonic() - started < 1.5
    assert ws.code == WS_CLOSE_UNAUTHORIZED
    assert registry.state() == {}


async def test_a_real_cancellation_still_propagates(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16)  # type: ignore[arg-type]
    task = asyncio.create_task(hold(registry, FakeSocket(), user(), until_closed=False))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.state() == {}


async def test_a_store_that_cannot_be_read_keeps_the_sessions(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16)  # type: ignore[arg-type]
    ws = FakeSocket()
    task = asyncio.create_task(hold(registry, ws, user()))
    await asyncio.sleep(0)
    store.down = True
    store.users[1] = standing(is_active=False)
    await registry.check()
    await registry.check()
    assert ws.code is None
    store.down = False
    await registry.check()
    assert await asyncio.wait_for(task, 1) == "ended"
    assert ws.code == WS_CLOSE_UNAUTHORIZED


async def test_the_poller_runs_by_itself(store: Store) -> None:
    store.users[1] = standing()
    registry = SessionRegistry(None, max_per_user=16, poll_interval=0.05)  # type: ignore[arg-type]
    registry.start()
    try:
        ws = FakeSocket()
        task = asyncio.create_task(hold(registry, ws, user()))
        await asyncio.sleep(0.2)
        assert ws.code is None
        store.users[1] = standing(token_version=9)
        assert await asyncio.wait_for(task, 1) == "ended"
        assert ws.code == WS_CLOSE_UNAUTHORIZED
    finally:
        await registry.close()


def test_poll_interval_is_half_a_second() -> None:
    assert sessions.POLL_INTERVAL == 0.5


# --- through the app: the real user store and close codes ---------------------------------------
def _app(settings: Any) -> FastAPI:
    app = create_app(settings, lxd_transport=httpx.MockTransport(fake_lxd_handler))

    @app.websocket("/test/ws/held")
    async def held_ws(websocket: WebSocket, user: WSViewerUser) -> None:
        await websocket.accept()
        registry = ws_sessions(websocket)
        async with registry.session(websocket, user=user, min_role=Role.viewer, project=None):
            await websocket.send_json({"open": registry.count(user.id)})
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

    return app


@pytest.fixture
def ws_client(
    make_settings: Callable[..., Any],
) -> Iterator[tuple[TestClient, AuthHelper, FastAPI]]:
    app = _app(make_settings(WS_MAX_SESSIONS_PER_USER=3))
    with TestClient(app) as client:
        assert client.portal is not None
        yield client, client.portal.call(auth_for, app), app


def test_the_fourth_session_is_closed_4429(
    ws_client: tuple[TestClient, AuthHelper, FastAPI],
) -> None:
    client, auth, _ = ws_client
    url = f"/test/ws/held?token={auth.token('viewer')}"
    with (
        client.websocket_connect(url) as one,
        client.websocket_connect(url) as two,
        client.websocket_connect(url) as three,
    ):
        assert [ws.receive_json()["open"] for ws in (one, two, three)] == [1, 2, 3]
        with client.websocket_connect(url) as four:
            with pytest.raises(WebSocketDisconnect) as refused:
                four.receive_json()
            assert refused.value.code == 4429
        # The admin's sessions are their own.
        with client.websocket_connect(f"/test/ws/held?token={auth.token('admin')}") as admin:
            assert admin.receive_json() == {"open": 1}
    with client.websocket_connect(url) as again:
        assert again.receive_json() == {"open": 1}


def test_a_password_reset_closes_the_session_4401_within_a_second(
    ws_client: tuple[TestClient, AuthHelper, FastAPI],
) -> None:
    client, _, app = ws_client
    assert client.portal is not None
    name = "sess-reset"

    async def make_user() -> str:
        async with app.state.db_sessionmaker() as session:
            created = await auth_service.register(
                session, username=name, password="a-long-password-1", role=Role.viewer
            )
        from app.core.security import create_token

        token, _ = create_token(
            app.state.settings,
            user_id=created.id,
            token_version=created.token_version,
            kind="access",
        )
        return token

    async def reset_password() -> None:
        async with app.state.db_sessionmaker() as session:
            await auth_service.update_user(
                session, username=name, role=None, is_active=None, password="another-password-2"
            )

    token = client.portal.call(make_user)
    with client.websocket_connect(f"/test/ws/held?token={token}") as ws:
        assert ws.receive_json() == {"open": 1}
        client.portal.call(reset_password)
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        elapsed = time.monotonic() - started
    assert closed.value.code == 4401
    assert elapsed < 1.0
