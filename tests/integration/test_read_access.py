"""Reads check the user beside the LXD call (`ViewerRead`): against the real LXD, a user an
admin disables, or whose role changes, is refused on the very next read with a 401, never the
data nor the endpoint's own error (a 404 for a missing instance)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

USERS = "/api/v1/users"
READS = ("/api/v1/instances", "/api/v1/system/info", "/api/v1/storage/pools")


async def _login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    reply = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": "operator"}])
async def test_a_changed_user_is_refused_on_the_next_read(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[[str], str],
    change: dict[str, object],
) -> None:
    admin = auth_headers("admin")
    name, password = unique("reader"), "reader-password-1"
    created = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "password": password, "role": "viewer"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    try:
        viewer = await _login(client, name, password)
        for path in READS:
            assert (await client.get(path, headers=viewer)).status_code == 200, path
        missing = await client.get(f"/api/v1/instances/{unique('none')}", headers=viewer)
        assert missing.status_code == 404

        patched = await client.patch(f"{USERS}/{name}", json=change, headers=admin)
        assert patched.status_code == 200, patched.text

        for path in (*READS, f"/api/v1/instances/{unique('none')}"):
            reply = await client.get(path, headers=viewer)
            assert reply.status_code == 401, (path, reply.text)
            assert set(reply.json()) == {"detail", "code", "request_id"}
            assert reply.json()["code"] == "invalid_token"
    finally:
        await client.delete(f"{USERS}/{name}", headers=admin)
