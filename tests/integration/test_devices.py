"""Volume attach/detach against the real LXD, in both connection modes: the device really lands
in the instance (read back with `lxd_raw`), data on the volume survives detach and re-attach,
concurrent edits of one instance all land, and the refusals (twice, in use, unknown) are clear.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

Headers = Callable[..., dict[str, str]]


@pytest.fixture
async def pool(lxd_raw: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[str]:
    """A dir pool with three custom volumes (vol-a, vol-b, vol-c), all made straight through
    LXD and deleted afterwards (the instance fixtures are torn down first)."""
    name = f"tp{uuid.uuid4().hex[:8]}"
    source = tmp_path / name
    source.mkdir()
    body = {"name": name, "driver": "dir", "config": {"source": str(source)}}
    assert (await lxd_raw.post("/1.0/storage-pools", json=body)).status_code == 201
    try:
        for volume in ("vol-a", "vol-b", "vol-c"):
            reply = await lxd_raw.post(
                f"/1.0/storage-pools/{name}/volumes/custom", json={"name": volume}
            )
            assert reply.status_code == 200, reply.text
        yield name
    finally:
        volumes = await lxd_raw.get(f"/1.0/storage-pools/{name}/volumes/custom")
        for url in volumes.json().get("metadata") or []:
            await lxd_raw.delete(url)
        await lxd_raw.delete(f"/1.0/storage-pools/{name}")


def api(pool: str, volume: str, action: str) -> str:
    return f"/api/v1/storage/pools/{pool}/volumes/{volume}/{action}"


async def devices_of(raw: httpx.AsyncClient, instance: str) -> dict[str, Any]:
    reply = await raw.get(f"/1.0/instances/{instance}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["metadata"]["devices"])


async def push_file(raw: httpx.AsyncClient, instance: str, path: str, data: bytes) -> None:
    reply = await raw.post(
        f"/1.0/instances/{instance}/files",
        params={"path": path},
        content=data,
        headers={"X-LXD-type": "file", "Content-Type": "application/octet-stream"},
    )
    assert reply.status_code == 200, reply.text


async def pull_file(raw: httpx.AsyncClient, instance: str, path: str) -> bytes | None:
    reply = await raw.get(f"/1.0/instances/{instance}/files", params={"path": path})
    return reply.content if reply.status_code == 200 else None


async def test_attach_detach_keeps_data(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    pool: str,
    instance: str,
) -> None:
    operator = auth_headers("operator")
    body = {"instance": instance, "path": "/mnt/data"}
    attached = await client.post(api(pool, "vol-a", "attach"), json=body, headers=operator)
    assert attached.status_code == 200, attached.text
    want = {"type": "disk", "pool": pool, "source": "vol-a", "path": "/mnt/data"}
    assert attached.json() == {"instance": instance, "device": "vol-a", "config": want}
    assert (await devices_of(lxd_raw, instance))["vol-a"] == want
    volume = await lxd_raw.get(f"/1.0/storage-pools/{pool}/volumes/custom/vol-a")
    assert f"/1.0/instances/{instance}" in volume.json()["metadata"]["used_by"]

    await push_file(lxd_raw, instance, "/mnt/data/kept.txt", b"survives detach\n")

    twice = await client.post(api(pool, "vol-a", "attach"), json=body, headers=operator)
    assert twice.status_code == 409, twice.text
    assert twice.json()["code"] == "already_attached"

    detached = await client.post(
        api(pool, "vol-a", "detach"), json={"instance": instance}, headers=operator
    )
    assert detached.status_code == 200, detached.text
    assert detached.json()["device"] == "vol-a"
    assert "vol-a" not in await devices_of(lxd_raw, instance)
    assert await pull_file(lxd_raw, instance, "/mnt/data/kept.txt") is None

    again = await client.post(
        api(pool, "vol-a", "detach"), json={"instance": instance}, headers=operator
    )
    assert again.status_code == 404, again.text

    back = await client.post(
        api(pool, "vol-a", "attach"),
        json={"instance": instance, "path": "/srv/back", "device": "data"},
        headers=operator,
    )
    assert back.status_code == 200, back.text
    assert back.json()["device"] == "data"
    assert await pull_file(lxd_raw, instance, "/srv/back/kept.txt") == b"survives detach\n"

    by_name = await client.post(
        api(pool, "vol-a", "detach"),
        json={"instance": instance, "device": "data"},
        headers=operator,
    )
    assert by_name.status_code == 200, by_name.text
    assert "data" not in await devices_of(lxd_raw, instance)


async def test_concurrent_attaches_all_land(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    pool: str,
    instance: str,
) -> None:
    operator = auth_headers("operator")

    async def attach(volume: str) -> httpx.Response:
        body = {"instance": instance, "path": f"/mnt/{volume}"}
        return await client.post(api(pool, volume, "attach"), json=body, headers=operator)

    async def raw_change() -> None:
        # Someone else edits the same instance straight through LXD meanwhile.
        reply = await lxd_raw.patch(
            f"/1.0/instances/{instance}", json={"config": {"user.note": "raw edit"}}
        )
        assert reply.status_code == 200, reply.text

    a, b, c, _ = await asyncio.gather(
        attach("vol-a"), attach("vol-b"), attach("vol-c"), raw_change()
    )
    for reply in (a, b, c):
        assert reply.status_code == 200, reply.text
    devices = await devices_of(lxd_raw, instance)
    assert {"vol-a", "vol-b", "vol-c"} <= set(devices)
    meta = (await lxd_raw.get(f"/1.0/instances/{instance}")).json()["metadata"]
    assert meta["config"]["user.note"] == "raw edit"

    detaches = await asyncio.gather(
        *(
            client.post(api(pool, v, "detach"), json={"instance": instance}, headers=operator)
            for v in ("vol-a", "vol-b", "vol-c")
        )
    )
    assert [d.status_code for d in detaches] == [200, 200, 200]
    assert not {"vol-a", "vol-b", "vol-c"} & set(await devices_of(lxd_raw, instance))


async def test_concurrent_attaches_without_the_process_lock(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    pool: str,
    instance: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if each request ran in another API process: only LXD's ETag (412) and its
    one-update-at-a-time rule stand between the edits, and the retries must make all land."""
    from app.services import devices

    monkeypatch.setattr(devices, "one_edit_at_a_time", lambda *key: asyncio.Lock())
    operator = auth_headers("operator")
    replies = await asyncio.gather(
        *(
            client.post(
                api(pool, v, "attach"),
                json={"instance": instance, "path": f"/m/{v}"},
                headers=operator,
            )
            for v in ("vol-a", "vol-b", "vol-c")
        )
    )
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text for r in replies]
    assert {"vol-a", "vol-b", "vol-c"} <= set(await devices_of(lxd_raw, instance))


async def test_names_and_refusals(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    pool: str,
    stopped_instance: str,
) -> None:
    operator, admin = auth_headers("operator"), auth_headers("admin")
    inst = stopped_instance
    # A device already named like the volume: the default name moves on to vol-b-2.
    taken = await lxd_raw.patch(
        f"/1.0/instances/{inst}",
        json={
            "devices": {"vol-b": {"type": "disk", "pool": pool, "source": "vol-c", "path": "/c"}}
        },
    )
    assert taken.status_code == 200, taken.text
    body = {"instance": inst, "path": "/b"}
    attached = await client.post(api(pool, "vol-b", "attach"), json=body, headers=operator)
    assert attached.status_code == 200, attached.text
    assert attached.json()["device"] == "vol-b-2"

    same_path = await client.post(
        api(pool, "vol-a", "attach"), json={"instance": inst, "path": "/b/"}, headers=operator
    )
    assert same_path.status_code == 409, same_path.text
    same_device = await client.post(
        api(pool, "vol-a", "attach"),
        json={"instance": inst, "path": "/a", "device": "root"},
        headers=operator,
    )
    assert same_device.status_code == 409, same_device.text  # the profile's root disk

    in_use = await client.delete(f"/api/v1/storage/pools/{pool}/volumes/vol-b", headers=admin)
    assert in_use.status_code == 409, in_use.text
    assert in_use.json()["code"] == "in_use"
    assert inst in in_use.json()["detail"]

    wrong_device = await client.post(
        api(pool, "vol-b", "detach"), json={"instance": inst, "device": "vol-b"}, headers=operator
    )
    assert wrong_device.status_code == 404, wrong_device.text  # that one holds vol-c
    profile_dev = await client.post(
        api(pool, "vol-b", "detach"), json={"instance": inst, "device": "root"}, headers=operator
    )
    assert profile_dev.status_code == 404

    no_instance = await client.post(
        api(pool, "vol-a", "attach"), json={"instance": "nope-x1", "path": "/a"}, headers=operator
    )
    assert no_instance.status_code == 404, no_instance.text
    assert "nope-x1" in no_instance.json()["detail"]
    no_volume = await client.post(
        api(pool, "nope", "attach"), json={"instance": inst, "path": "/a"}, headers=operator
    )
    assert no_volume.status_code == 404
    for bad in (
        {"instance": inst, "path": "relative"},
        {"instance": inst},
        {"instance": "../x", "path": "/a"},
        {"instance": inst, "path": "/a", "device": "a/b"},
    ):
        reply = await client.post(api(pool, "vol-a", "attach"), json=bad, headers=operator)
        assert reply.status_code == 422, (bad, reply.text)
    as_admin = await client.post(
        api(pool, "vol-a", "attach"), json={"instance": inst, "path": "/a"}, headers=admin
    )
    assert as_admin.status_code == 200, as_admin.text  # admin passes the operator gate
    refused = await client.post(
        api(pool, "vol-a", "detach"), json={"instance": inst}, headers=auth_headers("viewer")
    )
    assert refused.status_code == 403
    devices = await devices_of(lxd_raw, inst)
    assert set(devices) == {"vol-b", "vol-b-2", "vol-a"}
