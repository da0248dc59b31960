"""The instance read model against the real LXD, in both modes (API.md, "Lists at scale").

A change made straight at LXD (as `lxc` would) is in the API's next read once the model's
event stream got LXD's event for it: the tests wait for the event to reach the model (its
`recent` record), then read once, with no retry: a stale read fails. A change made through
the API is in the next read at once. `Cache-Control: no-cache` reads LXD; answers from the
model carry `Age`. A broken event stream sends reads to LXD until it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.services.readmodel import ReadModel
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import create_instance, delete_instance, lxd_wait

pytestmark = pytest.mark.integration

V1 = "/api/v1"
FRESH = {"Cache-Control": "no-cache"}


def model_of(app: FastAPI) -> ReadModel:
    model: ReadModel = app.state.read_model
    return model


async def until(check: Callable[[], bool], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def event_arrived(app: FastAPI, action: str, name: str, since: int) -> None:
    """Wait until the model's stream got `action` for `name` (after `since` events)."""
    model = model_of(app)

    def seen() -> bool:
        new = list(model.recent)[-(model.events - since) :] if model.events > since else []
        return any(a == action and n == name for _, a, n in new)

    await until(seen)


@pytest.fixture
async def model(app: FastAPI) -> ReadModel:
    await until(lambda: model_of(app).connected, timeout=30)
    return model_of(app)


@pytest.fixture
async def own(
    lxd_raw: httpx.AsyncClient, lxd_env: LXDEnv, unique: Callable[[str], str]
) -> AsyncIterator[list[str]]:
    """Names of instances a test creates straight at LXD (deleted afterwards, renamed too)."""
    names: list[str] = []
    yield names
    for name in names:
        await delete_instance(lxd_raw, name)


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> tuple[dict[str, dict[str, Any]], httpx.Response]:
    reply = await client.get(f"{V1}/instances", params={"limit": 1000, **params}, headers=headers)
    assert reply.status_code == 200, reply.text
    return {item["name"]: item for item in reply.json()["items"]}, reply


async def test_lists_and_gets_come_from_the_model_and_no_cache_reads_lxd(
    client: httpx.AsyncClient,
    model: ReadModel,
    stopped_instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    viewer = auth_headers("viewer")
    first, _ = await listed(client, viewer)
    again, reply = await listed(client, viewer)
    assert "Age" in reply.headers
    assert int(reply.headers["Age"]) >= 0
    assert again.keys() == first.keys()
    fresh, reply = await listed(client, {**viewer, **FRESH})
    assert "Age" not in reply.headers
    assert fresh[stopped_instance]["config"] == again[stopped_instance]["config"]
    assert fresh[stopped_instance]["status"] == again[stopped_instance]["status"]

    got = await client.get(f"{V1}/instances/{stopped_instance}", headers=viewer)
    direct = await client.get(f"{V1}/instances/{stopped_instance}", headers={**viewer, **FRESH})
    assert got.status_code == direct.status_code == 200
    assert "Age" in got.headers
    assert "Age" not in direct.headers
    assert got.headers["ETag"] == direct.headers["ETag"]  # If-Match works with either
    assert got.json()["config"] == direct.json()["config"]
    names = await client.get(f"{V1}/instances", params={"expand": "false"}, headers=viewer)
    assert "Age" in names.headers
    assert stopped_instance in names.json()["items"]
    missing = await client.get(f"{V1}/instances/nope-{stopped_instance}", headers=viewer)
    assert missing.status_code == 404


async def test_changes_made_at_lxd_show_once_their_event_arrived(
    app: FastAPI,
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    model: ReadModel,
    own: list[str],
    unique: Callable[[str], str],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    viewer = auth_headers("viewer")
    name = unique("rm")
    await listed(client, viewer)  # the model holds the project now

    since = model.events
    await create_instance(lxd_raw, name, image=lxd_env.image_alias, start=False)
    own.append(name)
    await event_arrived(app, "instance-created", name, since)
    items, _ = await listed(client, viewer)
    assert items[name]["status"] == "Stopped"

    since = model.events
    reply = await lxd_raw.patch(f"/1.0/instances/{name}", json={"config": {"user.mark": "one"}})
    assert reply.status_code == 200, reply.text
    await event_arrived(app, "instance-updated", name, since)
    items, _ = await listed(client, viewer)
    assert items[name]["config"]["user.mark"] == "one"
    got = await client.get(f"{V1}/instances/{name}", headers=viewer)
    assert got.json()["config"]["user.mark"] == "one"

    since = model.events
    reply = await lxd_raw.put(f"/1.0/instances/{name}/state", json={"action": "start"})
    await lxd_wait(lxd_raw, reply)
    await event_arrived(app, "instance-started", name, since)
    items, _ = await listed(client, viewer)
    assert items[name]["status"] == "Running"

    # It stops by itself (no stop request at all): LXD's shutdown event is enough.
    since = model.events
    body = {"command": ["poweroff", "-f"], "wait-for-websocket": False}
    await lxd_raw.post(f"/1.0/instances/{name}/exec", json=body)
    await event_arrived(app, "instance-shutdown", name, since)
    items, _ = await listed(client, viewer)
    assert items[name]["status"] == "Stopped"

    since, renamed = model.events, unique("rm")
    reply = await lxd_raw.post(f"/1.0/instances/{name}", json={"name": renamed})
    await lxd_wait(lxd_raw, reply)
    own.append(renamed)
    await event_arrived(app, "instance-renamed", renamed, since)
    items, _ = await listed(client, viewer)
    assert renamed in items
    assert name not in items
    assert (await client.get(f"{V1}/instances/{name}", headers=viewer)).status_code == 404

    since = model.events
    reply = await lxd_raw.delete(f"/1.0/instances/{renamed}")
    await lxd_wait(lxd_raw, reply)
    await event_arrived(app, "instance-deleted", renamed, since)
    items, _ = await listed(client, viewer)
    assert renamed not in items


async def test_writes_through_the_api_show_in_the_next_read_at_once(
    client: httpx.AsyncClient,
    model: ReadModel,
    stopped_instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    viewer, operator = auth_headers("viewer"), auth_headers("operator")
    await listed(client, viewer)
    for value in ("a", "b", "c"):
        reply = await client.patch(
            f"{V1}/instances/{stopped_instance}",
            json={"config": {"user.step": value}},
            headers=operator,
        )
        assert reply.status_code == 200, reply.text
        items, reply = await listed(client, viewer)
        assert "Age" in reply.headers
        assert items[stopped_instance]["config"]["user.step"] == value
    reply = await client.post(
        f"{V1}/instances/{stopped_instance}/start", params={"wait": "true"}, headers=operator
    )
    assert reply.status_code == 200, reply.text
    items, _ = await listed(client, viewer)
    assert items[stopped_instance]["status"] == "Running"
    got = await client.get(f"{V1}/instances/{stopped_instance}", headers=viewer)
    assert got.json()["status"] == "Running"


async def test_a_broken_event_stream_sends_reads_to_lxd_until_it_is_back(
    client: httpx.AsyncClient,
    model: ReadModel,
    stopped_instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    viewer = auth_headers("viewer")
    await listed(client, viewer)
    epoch = model.epoch
    assert model.connection is not None
    await model.connection.close()  # as when LXD restarts or the connection drops
    await until(lambda: not model.connected)
    assert model.state()["projects"] == {}  # everything it held is dropped
    items, reply = await listed(client, viewer)
    assert stopped_instance in items
    if not model.connected:
        assert "Age" not in reply.headers  # LXD answered
    await until(lambda: model.connected and model.epoch > epoch, timeout=30)
    items, reply = await listed(client, viewer)
    assert "Age" in reply.headers  # rebuilt from a fresh list
    assert stopped_instance in items


async def test_pages_come_from_one_snapshot_and_filters_go_to_lxd(
    client: httpx.AsyncClient,
    model: ReadModel,
    instance: str,
    stopped_instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    viewer = auth_headers("viewer")
    everything, _ = await listed(client, viewer)
    names = sorted(everything)
    pages: list[str] = []
    for offset in range(0, len(names), 2):
        reply = await client.get(
            f"{V1}/instances",
            params={"limit": 2, "offset": offset, "expand": "false"},
            headers=viewer,
        )
        assert reply.json()["total"] == len(names)
        pages.extend(reply.json()["items"])
    assert pages == names
    running = await client.get(
        f"{V1}/instances", params={"filter": "status eq Running"}, headers=viewer
    )
    assert "Age" not in running.headers  # LXD's filter language: LXD answers
    assert instance in {item["name"] for item in running.json()["items"]}
    assert stopped_instance not in {item["name"] for item in running.json()["items"]}
    containers, reply = await listed(client, viewer, **{"instance-type": "container"})
    assert "Age" in reply.headers
    assert instance in containers
    vms, _ = await listed(client, viewer, **{"instance-type": "virtual-machine"})
    assert instance not in vms
