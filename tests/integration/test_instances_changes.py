"""Instance changes against the real LXD, in both connection modes: PATCH/PUT with ETags,
rename, delete (with and without force). What changed is read back from LXD with `lxd_raw`."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.support.api import wait_ref
from tests.support.raw_lxd import lxd_instance

API = "/api/v1/instances"
Headers = Callable[..., dict[str, str]]


# --- update ---------------------------------------------------------------------------------------
async def test_patch_and_etag_conflict(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    first = await client.get(f"{API}/{stopped_instance}", headers=headers)
    etag = first.headers["etag"]
    patched = await client.patch(
        f"{API}/{stopped_instance}",
        json={"config": {"user.a": "1"}, "description": "patched"},
        headers={**headers, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["user.a"] == "1"
    assert patched.headers["etag"] != etag
    real = (await lxd_instance(lxd_raw, stopped_instance))["metadata"]
    assert real["config"]["user.a"] == "1"
    assert real["description"] == "patched"

    stale = await client.patch(
        f"{API}/{stopped_instance}",
        json={"description": "stale"},
        headers={**headers, "If-Match": etag},
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    stale_put = await client.put(
        f"{API}/{stopped_instance}",
        json={"description": "stale"},
        headers={**headers, "If-Match": etag},
    )
    assert stale_put.status_code == 412
    real = (await lxd_instance(lxd_raw, stopped_instance))["metadata"]
    assert real["description"] == "patched"

    bad = await client.patch(
        f"{API}/{stopped_instance}", json={"config": {"bogus.key": "1"}}, headers=headers
    )
    assert bad.status_code == 400
    assert "bogus.key" in bad.json()["detail"]


async def test_put_replaces(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    current = await client.get(f"{API}/{stopped_instance}", headers=headers)
    reply = await client.put(
        f"{API}/{stopped_instance}",
        json={"config": {"user.only": "this"}, "profiles": ["default"], "devices": {}},
        headers={**headers, "If-Match": current.headers["etag"]},
    )
    op = await wait_ref(lxd_raw, reply)
    assert op["status"] == "Success", op.get("err")
    real = (await lxd_instance(lxd_raw, stopped_instance))["metadata"]
    assert real["config"].get("user.only") == "this"
    assert "image.os" not in real["config"]  # replaced, not merged


async def test_rename(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    instance: str,
    names: list[str],
) -> None:
    headers = auth_headers("operator")
    new = f"rn{uuid.uuid4().hex[:8]}"
    names.append(new)
    running = await client.post(f"{API}/{instance}/rename", json={"name": new}, headers=headers)
    assert running.status_code == 409
    assert "stop" in running.json()["detail"].lower()
    await client.post(
        f"{API}/{instance}/stop", params={"wait": "true"}, json={"force": True}, headers=headers
    )
    taken = await client.post(f"{API}/{instance}/rename", json={"name": instance}, headers=headers)
    assert taken.status_code == 409
    bad = await client.post(f"{API}/{instance}/rename", json={"name": "a/b"}, headers=headers)
    assert bad.status_code == 422
    reply = await client.post(f"{API}/{instance}/rename", json={"name": new}, headers=headers)
    op = await wait_ref(lxd_raw, reply)
    assert op["status"] == "Success", op.get("err")
    assert await lxd_instance(lxd_raw, instance) is None
    assert (await lxd_instance(lxd_raw, new))["metadata"]["name"] == new


# --- delete ---------------------------------------------------------------------------------------
async def test_delete_running_needs_force(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    instance: str,
) -> None:
    headers = auth_headers("operator")
    refused = await client.delete(f"{API}/{instance}", headers=headers)
    assert refused.status_code == 409
    assert "running" in refused.json()["detail"]
    assert "force" in refused.json()["detail"]
    assert (await lxd_instance(lxd_raw, instance))["metadata"]["status"] == "Running"

    forced = await client.delete(
        f"{API}/{instance}", params={"force": "true", "wait": "true"}, headers=headers
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "Success"
    assert await lxd_instance(lxd_raw, instance) is None


async def test_delete_stopped(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    reply = await client.delete(f"{API}/{stopped_instance}", headers=auth_headers("operator"))
    op = await wait_ref(lxd_raw, reply)
    assert op["status"] == "Success"
    assert await lxd_instance(lxd_raw, stopped_instance) is None
