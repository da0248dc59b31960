"""Lifecycle (PUT state and the POST shortcuts) and logs, against the real LXD in both modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import wait_ref

API = "/api/v1/instances"
Headers = Callable[..., dict[str, str]]


async def lxd_status(raw: httpx.AsyncClient, name: str) -> Any:
    reply = await raw.get(f"/1.0/instances/{name}/state")
    return reply.json()["metadata"]["status"]


async def test_lifecycle_transitions(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}"
    steps = [
        ("start", None, "Running"),
        ("freeze", None, "Frozen"),
        ("unfreeze", None, "Running"),
        ("restart", {"force": True}, "Running"),
        ("stop", {"force": True, "timeout": 5}, "Stopped"),
    ]
    for action, body, expected in steps:
        reply = await client.post(
            f"{base}/{action}", params={"wait": "true"}, json=body, headers=headers
        )
        assert reply.status_code == 200, (action, reply.text)
        assert reply.json()["status"] == "Success"
        assert "fds" not in (reply.json().get("metadata") or {})
        assert await lxd_status(lxd_raw, stopped_instance) == expected, action

    # The same through PUT .../state, without waiting: a 202 and a reference.
    reply = await client.put(f"{base}/state", json={"action": "start"}, headers=headers)
    op = await wait_ref(lxd_raw, reply)
    assert op["status"] == "Success"
    assert await lxd_status(lxd_raw, stopped_instance) == "Running"


async def test_impossible_transition(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}"
    # Without waiting the 202 is honest: the operation exists, and fails with LXD's reason.
    accepted = await client.post(f"{base}/stop", headers=headers)
    op = await wait_ref(lxd_raw, accepted)
    assert op["status"] == "Failure"
    assert "already stopped" in op["err"]
    # Waited for, it is a 4xx in the error shape with the same reason.
    waited = await client.post(f"{base}/stop", params={"wait": "true"}, headers=headers)
    assert waited.status_code == 400, waited.text
    assert "already stopped" in waited.json()["detail"]
    assert set(waited.json()) == {"detail", "code", "request_id"}
    frozen = await client.put(
        f"{base}/state", params={"wait": "true"}, json={"action": "freeze"}, headers=headers
    )
    assert frozen.status_code == 400
    assert "running" in frozen.json()["detail"].lower()


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode"},
        {"action": "Start"},
        {},
        {"action": "stop", "timeout": -5},
        {"action": "stop", "force": "maybe"},
        {"action": "stop", "extra": 1},
    ],
)
async def test_bad_state_body_is_422(
    client: httpx.AsyncClient, auth_headers: Headers, body: Any
) -> None:
    # Refused before LXD is asked: the instance need not exist.
    reply = await client.put(f"{API}/never-made/state", json=body, headers=auth_headers("operator"))
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "validation_error"


async def test_lifecycle_needs_operator(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    reply = await client.post(f"{API}/{stopped_instance}/start", headers=auth_headers("viewer"))
    assert reply.status_code == 403
    anonymous = await client.post(f"{API}/{stopped_instance}/start")
    assert anonymous.status_code == 401
    assert await lxd_status(lxd_raw, stopped_instance) == "Stopped"


# --- logs -----------------------------------------------------------------------------------------
async def test_logs_list_and_file(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, instance: str
) -> None:
    headers = auth_headers("viewer")
    listing = await client.get(f"{API}/{instance}/logs", headers=headers)
    assert listing.status_code == 200
    body = listing.json()
    assert "lxc.log" in body["items"]
    assert body["total"] == len(body["items"])
    paged = await client.get(f"{API}/{instance}/logs", params={"limit": 1}, headers=headers)
    assert paged.json()["items"] == body["items"][:1]

    log = await client.get(f"{API}/{instance}/logs/lxc.log", headers=headers)
    assert log.status_code == 200
    assert log.headers["content-type"].startswith("text/plain")
    direct = await lxd_raw.get(f"/1.0/instances/{instance}/logs/lxc.log")
    assert log.content == direct.content
    assert int(log.headers["content-length"]) == len(direct.content)

    conf = await client.get(f"{API}/{instance}/logs/lxc.conf", headers=headers)
    assert conf.status_code == 200
    assert "lxc.uts.name" in conf.text


async def test_log_bad_names(
    client: httpx.AsyncClient, auth_headers: Headers, instance: str
) -> None:
    headers = auth_headers("viewer")
    missing = await client.get(f"{API}/{instance}/logs/nope.log", headers=headers)
    assert missing.status_code == 404
    assert "nope.log" in missing.json()["detail"]
    for bad in ("%2E%2E", ".hidden", "a%3Fb", "a%25b"):
        reply = await client.get(f"{API}/{instance}/logs/{bad}", headers=headers)
        assert reply.status_code == 422, (bad, reply.text)
    unknown = await client.get(f"{API}/nope-x1/logs", headers=headers)
    assert unknown.status_code == 404
    unknown_file = await client.get(f"{API}/nope-x1/logs/lxc.log", headers=headers)
    assert unknown_file.status_code == 404
    assert "nope-x1" in unknown_file.json()["detail"]


async def test_console_log(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, instance: str
) -> None:
    headers = auth_headers("viewer")
    # LXD 5.0.2 serves it once per boot; every read here must still be a 200 with text.
    for _ in range(2):
        reply = await client.get(f"{API}/{instance}/console/log", headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
    missing = await client.get(f"{API}/nope-x1/console/log", headers=headers)
    assert missing.status_code == 404
