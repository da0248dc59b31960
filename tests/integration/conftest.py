"""Integration fixtures: everything here talks to the real LXD daemon.

* `lxd_raw`: the raw LXD client (`tests.support.raw_lxd`), independent of our code, to read
  back what really changed in LXD.
* `unique(prefix)`: a fresh, valid LXD name.
* `auth_headers(role)` (from the root conftest) for requests through the API.
* `live_url`: the app served by uvicorn on 127.0.0.1 (per mode), for WebSocket tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import create_instance, delete_instance, raw_client
from tests.support.waiting import caught_up

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def lxd_raw(lxd_env: LXDEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with raw_client(lxd_env.socket_path) as raw:
        yield raw


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
async def names(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Names of instances a test creates (through the API, or by mistake); deleted afterwards
    whatever happens."""
    created: list[str] = []
    try:
        yield created
    finally:
        for name in created:
            await delete_instance(lxd_raw, name)


@pytest.fixture
async def instance(
    app: Any, lxd_raw: httpx.AsyncClient, lxd_env: LXDEnv, unique: Callable[[str], str]
) -> AsyncIterator[str]:
    """A running busybox container in the default project, removed afterwards."""
    name = unique("it")
    await create_instance(lxd_raw, name, image=lxd_env.image_alias)
    await caught_up(app, lxd_raw, name)
    try:
        yield name
    finally:
        await delete_instance(lxd_raw, name)


@pytest.fixture
async def stopped_instance(
    app: Any, lxd_raw: httpx.AsyncClient, lxd_env: LXDEnv, unique: Callable[[str], str]
) -> AsyncIterator[str]:
    """A stopped busybox container in the default project, removed afterwards."""
    name = unique("it")
    await create_instance(lxd_raw, name, image=lxd_env.image_alias, start=False)
    await caught_up(app, lxd_raw, name)
    try:
        yield name
    finally:
        await delete_instance(lxd_raw, name)


@pytest.fixture(scope="session")
async def live_url(app: Any) -> AsyncIterator[str]:
    """The integration `app` (already started) served by uvicorn on 127.0.0.1, one per
    connection mode, for WebSocket tests (httpx's ASGI transport has no websockets). Returns
    the `ws://127.0.0.1:<port>` base; connect with the `websockets` client."""
    import asyncio
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # lifespan off: the `app` fixture already ran it; log_config None: leave logging alone.
    config = uvicorn.Config(app, lifespan="off", log_config=None, ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
