"""Snapshots against the real LXD in both modes: create, list, get, rename, expiry, delete,
restore (a file written after the snapshot is gone), and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.api import wait_ref

API = "/api/v1/instances"
Headers = Callable[..., dict[str, str]]


async def lxd_snapshot(raw: httpx.AsyncClient, name: str, snapshot: str) -> Any:
    reply = await raw.get(f"/1.0/instances/{name}/snapshots/{snapshot}")
    return reply.json()["metadata"] if reply.status_code == 200 else None


async def push_file(raw: httpx.AsyncClient, name: str, path: str, data: bytes) -> None:
    reply = await raw.post(
        f"/1.0/instances/{name}/files",
        params={"path": path},
        content=data,
        headers={
            "X-LXD-type": "file",
            "X-LXD-mode": "0644",
            "Content-Type": "application/octet-stream",
        },
    )
    assert reply.status_code == 200, reply.text


async def file_exists(raw: httpx.AsyncClient, name: str, path: str) -> bool:
    reply = await raw.get(f"/1.0/instances/{name}/files", params={"path": path})
    return reply.status_code == 200


async def test_snapshot_lifecycle(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}/snapshots"
    created = await client.post(base, params={"wait": "true"}, json={"name": "s1"}, headers=headers)
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "Success"
    assert await lxd_snapshot(lxd_raw, stopped_instance, "s1") is not None

    duplicate = await client.post(base, json={"name": "s1"}, headers=headers)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "conflict"

    viewer = auth_headers("viewer")
    listing = await client.get(base, headers=viewer)
    assert listing.status_code == 200
    assert [item["name"] for item in listing.json()["items"]] == ["s1"]
    names = await client.get(base, params={"expand": "false"}, headers=viewer)
    assert names.json() == {"items": ["s1"], "total": 1, "limit": None, "offset": 0}
    one = await client.get(f"{base}/s1", headers=viewer)
    assert one.status_code == 200
    assert one.json()["name"] == "s1"

    expiry = await client.patch(
        f"{base}/s1",
        params={"wait": "true"},
        json={"expires_at": "2031-01-02T03:04:05Z"},
        headers=headers,
    )
    assert expiry.status_code == 200, expiry.text
    assert (await lxd_snapshot(lxd_raw, stopped_instance, "s1"))["expires_at"].startswith(
        "2031-01-02T03:04:05"
    )

    renamed = await client.patch(f"{base}/s1", json={"name": "s2"}, headers=headers)
    op = await wait_ref(lxd_raw, renamed)
    assert op["status"] == "Success", op.get("err")
    assert await lxd_snapshot(lxd_raw, stopped_instance, "s1") is None
    assert await lxd_snapshot(lxd_raw, stopped_instance, "s2") is not None

    deleted = await client.delete(f"{base}/s2", params={"wait": "true"}, headers=headers)
    assert deleted.status_code == 200
    assert await lxd_snapshot(lxd_raw, stopped_instance, "s2") is None


async def test_restore_removes_later_files(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}/snapshots"
    await push_file(lxd_raw, stopped_instance, "/root/before.txt", b"kept\n")
    made = await client.post(base, params={"wait": "true"}, json={"name": "snap"}, headers=headers)
    assert made.status_code == 200
    await push_file(lxd_raw, stopped_instance, "/root/after.txt", b"gone after restore\n")
    assert await file_exists(lxd_raw, stopped_instance, "/root/after.txt")

    restored = await client.post(f"{base}/snap/restore", headers=headers)
    op = await wait_ref(lxd_raw, restored)
    assert op["status"] == "Success", op.get("err")
    assert not await file_exists(lxd_raw, stopped_instance, "/root/after.txt")
    assert await file_exists(lxd_raw, stopped_instance, "/root/before.txt")


async def test_snapshot_bad_input(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}/snapshots"
    for body in ({"name": "a/b"}, {"name": ""}, {"name": "..x"}, {}, {"name": "s", "bogus": 1}):
        reply = await client.post(base, json=body, headers=headers)
        assert reply.status_code == 422, (body, reply.text)
    empty_patch = await client.patch(f"{base}/x", json={}, headers=headers)
    assert empty_patch.status_code == 422
    for path in (f"{base}/nope", f"{base}/nope/restore"):
        method = "POST" if path.endswith("restore") else "GET"
        reply = await client.request(method, path, headers=headers)
        assert reply.status_code == 404, (path, reply.text)
        assert "nope" in reply.json()["detail"]
    missing_instance = await client.get(f"{API}/nope-x1/snapshots", headers=headers)
    assert missing_instance.status_code == 404
    create_missing = await client.post(
        f"{API}/nope-x1/snapshots", json={"name": "s"}, headers=headers
    )
    assert create_missing.status_code == 404
    viewer = await client.post(base, json={"name": "s"}, headers=auth_headers("viewer"))
    assert viewer.status_code == 403
    listing = await lxd_raw.get(f"/1.0/instances/{stopped_instance}/snapshots")
    assert listing.json()["metadata"] == []
