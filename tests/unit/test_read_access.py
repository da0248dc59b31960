"""`ViewerRead`: reads ask LXD while the user's row is still being read, and answer only once
it is in. A user disabled in the meantime gets a 401, never the data nor the endpoint's error;
the overlap really happens; a cancelled request cancels the pending check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

import app.api.access as deps
from app.auth import current
from app.core.security import Role, create_token
from app.db import crud
from app.db.crud import Standing
from app.db.models import User
from tests.support.lxd_replies import error, streamed

SECRET_NAME = "c-secret-data"
INSTANCES = "/api/v1/instances"


def _lxd(seen: list[str]) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    """LXD with one instance; records the paths it was asked for."""

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/1.0/instances":
            metadata: Any = [{"name": SECRET_NAME, "status": "Running"}]
            return streamed(metadata)
        return error(404, "Instance not found")

    return handler


async def _viewer(app: FastAPI, name: str) -> tuple[int, dict[str, str]]:
    async with app.state.db_sessionmaker() as session:
        user = await crud.create_user(session, username=name, password_hash="x", role=Role.viewer)
        await session.commit()
        user_id, version = user.id, user.token_version
    token, _ = create_token(
        app.state.settings, user_id=user_id, token_version=version, kind="access"
    )
    return user_id, {"Authorization": f"Bearer {token}"}


async def _disable(app: FastAPI, user_id: int) -> None:
    async with app.state.db_sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.is_active = False
        await session.commit()


async def test_a_disabled_user_gets_401_not_the_data_nor_the_endpoints_error(
    make_unit_app: Callable[..., Awaitable[FastAPI]],
) -> None:
    seen: list[str] = []
    app = await make_unit_app(lxd_handler=_lxd(seen))
    user_id, headers = await _viewer(app, "reader")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        ok = await client.get(INSTANCES, headers=headers)
        assert ok.status_code == 200
        assert [item["name"] for item in ok.json()["items"]] == [SECRET_NAME]

        await _disable(app, user_id)
        seen.clear()
        refused = await client.get(INSTANCES, headers=headers)
        missing = await client.get(f"{INSTANCES}/nope", headers=headers)

    assert "/1.0/instances" in seen  # LXD was asked meanwhile ...
    for reply in (refused, missing):  # ... and nothing of it came out
        assert reply.status_code == 401, reply.text
        assert reply.json()["code"] == "invalid_token"
        assert SECRET_NAME not in reply.text


async def test_a_bad_token_is_refused_before_lxd_is_asked(
    make_unit_app: Callable[..., Awaitable[FastAPI]],
) -> None:
    seen: list[str] = []
    app = await make_unit_app(lxd_handler=_lxd(seen))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
            reply = await client.get(INSTANCES, headers=headers)
            assert reply.status_code == 401
    assert "/1.0/instances" not in seen


async def test_the_user_check_and_the_lxd_read_overlap(
    make_unit_app: Callable[..., Awaitable[FastAPI]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check waits until LXD has been asked: done one after the other, this would time out."""
    seen: list[str] = []
    asked = asyncio.Event()
    handler = _lxd(seen)

    async def lxd(request: httpx.Request) -> httpx.Response:
        asked.set()
        return await handler(request)

    real_load = current.get_standing

    async def load_after_lxd_was_asked(
        engine: Any, user_id: int, jti: str | None = None
    ) -> Standing | None:
        await asyncio.wait_for(asked.wait(), timeout=5)
        return await real_load(engine, user_id, jti)

    app = await make_unit_app(lxd_handler=lxd)
    _, headers = await _viewer(app, "overlap")
    monkeypatch.setattr(current, "get_standing", load_after_lxd_was_asked)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        reply = await client.get(INSTANCES, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["total"] == 1


async def test_a_cancelled_read_cancels_the_pending_check(
    unit_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = asyncio.Event()

    async def never_answers(engine: Any, user_id: int, jti: str | None = None) -> Standing | None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    monkeypatch.setattr(current, "get_standing", never_answers)
    token, _ = create_token(unit_app.state.settings, user_id=1, token_version=0, kind="access")
    request = Request({"type": "http", "app": unit_app, "method": "GET", "headers": []})
    access = cast(AsyncGenerator[None, None], deps.ReadAccess(Role.viewer)(request, token, None))
    await anext(access)
    await asyncio.sleep(0.01)  # the check is under way
    with pytest.raises(asyncio.CancelledError):
        await access.athrow(asyncio.CancelledError())
    await asyncio.wait_for(cancelled.wait(), timeout=5)


def test_only_json_reads_overlap_the_check() -> None:
    """`ViewerRead` sits on GET routes only, and not on the streamed ones (log files)."""
    from app.core.config import Settings
    from app.main import create_app
    from tests.support.routes import iter_routes

    def uses_read_access(dependant: Any) -> bool:
        return isinstance(dependant.call, deps.ReadAccess) or any(
            uses_read_access(sub) for sub in dependant.dependencies
        )

    app = create_app(Settings(_env_file=None, JWT_SECRET="r" * 48))
    overlapped = {
        (method, path)
        for method, path, dependant in iter_routes(app)
        if dependant is not None and uses_read_access(dependant)
    }
    assert overlapped, "no route uses ViewerRead"
    assert {method for method, _ in overlapped} == {"GET"}
    streamed = ("/logs/{file}", "/console/log")
    assert not {path for _, path in overlapped if path.endswith(streamed)}
    assert ("GET", "/api/v1/instances") in overlapped
