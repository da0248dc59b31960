"""`/operations` routes against the real LXD, in both modes; read back with `lxd_raw`."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.support.lxd_sandbox import LXDEnv

pytestmark = pytest.mark.integration


async def start_sleep(raw: httpx.AsyncClient, name: str, seconds: int) -> str:
    """Start `sleep N` in the instance straight through LXD (an operation, not cancellable)."""
    body = {"command": ["sleep", str(seconds)], "wait-for-websocket": False}
    reply = await raw.post(f"/1.0/instances/{name}/exec", json=body)
    assert reply.status_code == 202, reply.text
    return str(reply.json()["metadata"]["id"])


@pytest.fixture
async def image_token(lxd_raw: httpx.AsyncClient, lxd_env: LXDEnv) -> AsyncIterator[dict[str, Any]]:
    """A running token operation (an image download secret): LXD lets such ones be cancelled."""
    alias = await lxd_raw.get(f"/1.0/images/aliases/{lxd_env.image_alias}")
    fingerprint = alias.json()["metadata"]["target"]
    reply = await lxd_raw.post(f"/1.0/images/{fingerprint}/secret")
    assert reply.status_code == 202, reply.text
    operation = reply.json()["metadata"]
    try:
        yield operation
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await lxd_raw.delete(f"/1.0/operations/{operation['id']}")


async def test_list_flattens_groups_and_hides_secrets(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
    image_token: dict[str, Any],
) -> None:
    sleep_id = await start_sleep(lxd_raw, instance, 5)
    try:
        reply = await client.get("/api/v1/operations", headers=auth_headers("viewer"))
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert set(page) == {"items", "total", "limit", "offset"}
        by_id = {item["id"]: item for item in page["items"]}
        assert by_id[sleep_id]["status"] == "Running"
        assert by_id[image_token["id"]]["class"] == "token"
        assert all("status" in item for item in page["items"])
        assert image_token["metadata"]["secret"] not in reply.text
        assert '"fds"' not in reply.text
        names = await client.get(
            "/api/v1/operations", params={"expand": "false"}, headers=auth_headers("viewer")
        )
        assert sleep_id in names.json()["items"]
        paged = await client.get(
            "/api/v1/operations", params={"limit": 1}, headers=auth_headers("viewer")
        )
        assert len(paged.json()["items"]) == 1
        # Other test runs share the daemon: the total may move between two reads.
        assert paged.json()["total"] >= 2
        assert paged.json()["limit"] == 1
    finally:
        await lxd_raw.get(f"/1.0/operations/{sleep_id}/wait", params={"timeout": 30})


async def test_unknown_project_is_404(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    reply = await client.get(
        "/api/v1/operations", params={"project": "no-such-project-x"}, headers=auth_headers()
    )
    assert reply.status_code == 404
    assert reply.json()["code"] == "not_found"


async def test_get_and_wait(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
) -> None:
    headers = auth_headers("viewer")
    operation_id = await start_sleep(lxd_raw, instance, 3)
    got = await client.get(f"/api/v1/operations/{operation_id}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == operation_id
    assert got.json()["status"] in {"Pending", "Running"}
    early = await client.get(
        f"/api/v1/operations/{operation_id}/wait", params={"timeout": 1}, headers=headers
    )
    assert early.status_code == 200
    assert early.json()["status"] == "Running"
    done = await client.get(
        f"/api/v1/operations/{operation_id}/wait", params={"timeout": 30}, headers=headers
    )
    assert done.status_code == 200
    assert done.json()["status"] == "Success"
    assert done.json()["metadata"]["return"] == 0
    raw = await lxd_raw.get(f"/1.0/operations/{operation_id}")
    assert raw.json()["metadata"]["status"] == "Success"


async def test_failed_operation_is_a_200_with_its_error(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
) -> None:
    body = {"command": ["no-such-binary"], "wait-for-websocket": False}
    reply = await lxd_raw.post(f"/1.0/instances/{instance}/exec", json=body)
    operation_id = reply.json()["metadata"]["id"]
    done = await client.get(
        f"/api/v1/operations/{operation_id}/wait", params={"timeout": 30}, headers=auth_headers()
    )
    assert done.status_code == 200
    assert done.json()["status"] == "Failure"
    assert done.json()["err"]


async def test_unknown_and_malformed_ids(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = auth_headers("operator")
    missing = str(uuid.uuid4())
    for method, path in (
        ("GET", f"/api/v1/operations/{missing}"),
        ("GET", f"/api/v1/operations/{missing}/wait?timeout=1"),
        ("DELETE", f"/api/v1/operations/{missing}"),
    ):
        reply = await client.request(method, path, headers=headers)
        assert reply.status_code == 404, (method, path, reply.text)
        assert "expire" in reply.json()["detail"]
    for bad in ("not-a-uuid", "..", "x" * 40):
        reply = await client.get(f"/api/v1/operations/{bad}", headers=headers)
        assert reply.status_code in {404, 422}, bad
        assert reply.status_code == 422 or bad == ".."
    too_long = await client.get(
        f"/api/v1/operations/{missing}/wait", params={"timeout": 99999}, headers=headers
    )
    assert too_long.status_code == 422


async def test_cancel(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
    image_token: dict[str, Any],
) -> None:
    url = f"/api/v1/operations/{image_token['id']}"
    assert (await client.delete(url, headers=auth_headers("viewer"))).status_code == 403
    reply = await client.delete(url, headers=auth_headers("operator"))
    assert reply.status_code == 204, reply.text
    raw = await lxd_raw.get(f"/1.0/operations/{image_token['id']}")
    assert raw.json()["metadata"]["status"] == "Cancelled"
    again = await client.delete(url, headers=auth_headers("operator"))
    assert again.status_code == 400
    assert "running" in again.json()["detail"].lower()

    sleep_id = await start_sleep(lxd_raw, instance, 3)
    refused = await client.delete(f"/api/v1/operations/{sleep_id}", headers=auth_headers())
    assert refused.status_code == 400
    assert "can't be cancelled" in refused.json()["detail"]
    still = await lxd_raw.get(f"/1.0/operations/{sleep_id}")
    assert still.json()["metadata"]["status"] == "Running"
    await lxd_raw.get(f"/1.0/operations/{sleep_id}/wait", params={"timeout": 30})


async def test_token_secret_is_not_shown(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    image_token: dict[str, Any],
) -> None:
    reply = await client.get(
        f"/api/v1/operations/{image_token['id']}", headers=auth_headers("viewer")
    )
    assert reply.status_code == 200
    assert "secret" not in reply.json()["metadata"]
    assert image_token["metadata"]["secret"] not in reply.text


async def test_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/operations")).status_code == 401
