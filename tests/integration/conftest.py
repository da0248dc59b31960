"""Integration fixtures: everything here talks to the real LXD daemon.

* `lxd_raw`: a plain httpx client on LXD's unix socket, independent of our code, to read back
  what really changed in LXD.
* `unique(prefix)`: a fresh, valid LXD name.
* `auth_headers(role)` (from the root conftest) for requests through the API.
* `live_url`: the app served by uvicorn on 127.0.0.1 (per mode), for WebSocket tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.lxd_sandbox import LXDEnv

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def lxd_raw(lxd_env: LXDEnv) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(uds=lxd_env.socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://lxd", timeout=120) as raw:
        yield raw


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


async def lxd_wait(raw: httpx.AsyncClient, reply: httpx.Response, timeout: int = 60) -> Any:
    """Wait for the operation an async LXD reply started; return the finished operation."""
    body = reply.json()
    assert body["type"] == "async", body
    done = await raw.get(f"{body['operation']}/wait", params={"timeout": timeout})
    return done.json()["metadata"]


async def create_instance(
    raw: httpx.AsyncClient,
    name: str,
    *,
    image: str,
    project: str = "default",
    start: bool = True,
) -> None:
    """Create (and start) a container straight through LXD, not through our API."""
    body = {"name": name, "source": {"type": "image", "alias": image}}
    reply = await raw.post("/1.0/instances", params={"project": project}, json=body)
    op = await lxd_wait(raw, reply)
    assert op["status"] == "Success", op
    if start:
        reply = await raw.put(
            f"/1.0/instances/{name}/state", params={"project": project}, json={"action": "start"}
        )
        op = await lxd_wait(raw, reply)
        assert op["status"] == "Success", op


async def delete_instance(raw: httpx.AsyncClient, name: str, project: str = "default") -> None:
    """Stop (hard) and delete an instance if it is still there."""
    params = {"project": project}
    reply = await raw.put(
        f"/1.0/instances/{name}/state", params=params, json={"action": "stop", "force": True}
    )
    if reply.status_code == 202:
        await lxd_wait(raw, reply)
    reply = await raw.delete(f"/1.0/instances/{name}", params=params)
    if reply.status_code == 202:
        await lxd_wait(raw, reply)


async def remove_project(raw: httpx.AsyncClient, name: str) -> None:
    """Delete a test project and every instance in it, and check that it is gone."""
    reply = await raw.get("/1.0/instances", params={"project": name})
    for url in reply.json().get("metadata") or []:
        # "/1.0/instances/web1?project=p": the name is the last path segment, without the query.
        await delete_instance(raw, urlsplit(url).path.rsplit("/", 1)[-1], project=name)
    await raw.delete(f"/1.0/projects/{name}")
    gone = await raw.get(f"/1.0/projects/{name}")
    assert gone.status_code == 404, f"project {name} left behind: {gone.text}"


async def close_code(ws: Any, timeout: float = 10) -> int | None:
    """Read (and drop) frames of a `websockets` client socket until the server closes it; its
    close code. Longer than `timeout` seconds: TimeoutError."""
    import asyncio

    from websockets.exceptions import ConnectionClosed

    async with asyncio.timeout(timeout):
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
    return int(ws.close_code) if ws.close_code is not None else None


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


async def caught_up(app: Any, raw: httpx.AsyncClient, name: str, project: str = "default") -> None:
    """Wait until the app's read model has every LXD event sent so far (a change made straight
    at LXD is in the API's reads once its event arrived: API.md, "Lists at scale"). LXD sends
    events in order on one connection, so an event of our own making is the barrier: reading
    the instance's metadata sends `instance-metadata-retrieved`."""
    import asyncio

    model = getattr(app.state, "read_model", None)
    if model is None or not model.connected:
        return
    since = model.events
    await raw.get(f"/1.0/instances/{name}/metadata", params={"project": project})

    def arrived() -> bool:
        new = list(model.recent)[-(model.events - since) :] if model.events > since else []
        return (project, "instance-metadata-retrieved", name) in new

    async with asyncio.timeout(10):
        while not arrived():
            await asyncio.sleep(0.01)


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
