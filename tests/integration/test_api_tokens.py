"""API tokens against the real LXD, in both modes (API.md, Part 2, "API tokens for scripts and
CI"): a token drives a real instance start, a viewer-role token is refused one, revoking the
token or disabling its user is a 401 at its next request, a token cannot mint tokens or change
a password, a project-limited token sees only its projects, and the secret never shows again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from websockets.asyncio.client import connect

from app.db.models import ApiToken, utcnow
from tests.support.auth import TEST_USER_PASSWORD
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import create_instance, remove_project
from tests.support.ws import close_code

pytestmark = pytest.mark.integration

V1 = "/api/v1"
TOKENS = f"{V1}/auth/tokens"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def scripted_user(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[[str], str],
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A fresh operator (its own, so it can be disabled) and its login headers."""
    username, admin = unique("ci"), auth_headers("admin")
    body = {"username": username, "password": TEST_USER_PASSWORD, "role": "operator"}
    assert (await client.post(f"{V1}/auth/register", json=body, headers=admin)).status_code == 201
    login = await client.post(
        f"{V1}/auth/login", json={"username": username, "password": TEST_USER_PASSWORD}
    )
    try:
        yield username, bearer(login.json()["access_token"])
    finally:
        await client.delete(f"{V1}/users/{username}", headers=admin)


async def _created(
    client: httpx.AsyncClient, headers: dict[str, str], **body: object
) -> dict[str, str]:
    reply = await client.post(TOKENS, json={"name": "ci", **body}, headers=headers)
    assert reply.status_code == 201, reply.text
    created: dict[str, str] = reply.json()
    assert created["token"].startswith("lxa_")
    assert len(created["token"]) >= 4 + 43  # 32 random bytes, base64url
    return created


async def _token(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> str:
    return (await _created(client, headers, **body))["token"]


async def test_a_token_starts_an_instance_and_a_viewer_token_cannot(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    scripted_user: tuple[str, dict[str, str]],
    stopped_instance: str,
) -> None:
    _, login = scripted_user
    operator_token = await _token(client, login)
    viewer_token = await _token(client, login, role="viewer")
    start = f"{V1}/instances/{stopped_instance}/start"

    refused = await client.post(start, params={"wait": "true"}, headers=bearer(viewer_token))
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    state = await lxd_raw.get(f"/1.0/instances/{stopped_instance}/state")
    assert state.json()["metadata"]["status"] == "Stopped"
    # A viewer token reads (the JSON reads check the token beside the LXD call).
    read = await client.get(f"{V1}/instances/{stopped_instance}", headers=bearer(viewer_token))
    assert read.status_code == 200

    started = await client.post(start, params={"wait": "true"}, headers=bearer(operator_token))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "Success"
    state = await lxd_raw.get(f"/1.0/instances/{stopped_instance}/state")
    assert state.json()["metadata"]["status"] == "Running"

    listed = await client.get(TOKENS, headers=login)
    assert listed.status_code == 200
    assert {t["role"] for t in listed.json()} == {"operator", "viewer"}
    assert "lxa_" not in listed.text
    (used,) = [t for t in listed.json() if t["role"] == "operator"]
    assert used["last_used_at"] is not None


async def test_revoking_or_disabling_cuts_a_token_off_at_once(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    scripted_user: tuple[str, dict[str, str]],
) -> None:
    username, login = scripted_user
    one, two = await _created(client, login), await _created(client, login)
    for token in (one, two):
        reply = await client.get(f"{V1}/instances", headers=bearer(token["token"]))
        assert reply.status_code == 200
    revoked = await client.delete(f"{TOKENS}/{one['id']}", headers=login)
    assert revoked.status_code == 204
    reply = await client.get(f"{V1}/instances", headers=bearer(one["token"]))
    assert reply.status_code == 401
    assert reply.json()["code"] == "invalid_token"
    assert (await client.get(f"{V1}/auth/me", headers=bearer(one["token"]))).status_code == 401
    assert (await client.get(f"{V1}/instances", headers=bearer(two["token"]))).status_code == 200
    again = await client.delete(f"{TOKENS}/{one['id']}", headers=login)
    assert again.status_code == 404
    alive = two["token"]

    admin = auth_headers("admin")
    admin_list = await client.get(f"{V1}/users/{username}/tokens", headers=admin)
    assert [t["id"] for t in admin_list.json()] == [two["id"]]
    disabled = await client.patch(
        f"{V1}/users/{username}", json={"is_active": False}, headers=admin
    )
    assert disabled.status_code == 200
    reply = await client.get(f"{V1}/instances", headers=bearer(alive))
    assert reply.status_code == 401
    assert reply.json()["code"] == "invalid_token"


async def test_a_token_cannot_mint_tokens_or_change_the_password(
    client: httpx.AsyncClient, scripted_user: tuple[str, dict[str, str]]
) -> None:
    _, login = scripted_user
    token = bearer(await _token(client, login))
    minted = await client.post(TOKENS, json={"name": "more"}, headers=token)
    assert minted.status_code == 403
    change = {"current_password": TEST_USER_PASSWORD, "new_password": "another-pass-1"}
    assert (
        await client.put(f"{V1}/auth/me/password", json=change, headers=token)
    ).status_code == 403
    ids = [t["id"] for t in (await client.get(TOKENS, headers=login)).json()]
    assert (await client.delete(f"{TOKENS}/{ids[0]}", headers=token)).status_code == 403
    refresh = await client.post(
        f"{V1}/auth/refresh", json={"refresh_token": token["Authorization"][7:]}
    )
    assert refresh.status_code == 401
    # Listing its own user's tokens is a read: allowed.
    assert (await client.get(TOKENS, headers=token)).status_code == 200


async def test_token_limits_on_create(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    scripted_user: tuple[str, dict[str, str]],
    unique: Callable[[str], str],
) -> None:
    _, login = scripted_user
    above = await client.post(TOKENS, json={"name": "x", "role": "admin"}, headers=login)
    assert above.status_code == 400
    unseen = await client.post(
        TOKENS, json={"name": "x", "projects": [unique("nope")]}, headers=auth_headers("none")
    )
    assert unseen.status_code == 400
    too_long = await client.post(TOKENS, json={"name": "x", "expires_in_days": 366}, headers=login)
    assert too_long.status_code == 400
    ok = await client.post(TOKENS, json={"name": "x", "expires_in_days": 7}, headers=login)
    assert ok.status_code == 201


async def test_an_expired_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, scripted_user: tuple[str, dict[str, str]]
) -> None:
    _, login = scripted_user
    token = await _token(client, login, expires_in_days=1)
    assert (await client.get(f"{V1}/auth/me", headers=bearer(token))).status_code == 200
    async with app.state.db_sessionmaker() as session:
        await session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    reply = await client.get(f"{V1}/auth/me", headers=bearer(token))
    assert reply.status_code == 401
    assert reply.json()["detail"] == "API token expired"


async def test_a_project_limited_token_sees_only_its_projects(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[[str], str],
) -> None:
    project, name = unique("tokp"), unique("ti")
    reply = await lxd_raw.post(
        "/1.0/projects",
        json={
            "name": project,
            "config": {"features.images": "false", "features.profiles": "false"},
        },
    )
    assert reply.status_code in (200, 201), reply.text
    try:
        await create_instance(
            lxd_raw, name, image=lxd_env.image_alias, project=project, start=False
        )
        token = bearer(
            await _token(client, auth_headers("admin"), role="operator", projects=[project])
        )
        me = await client.get(f"{V1}/auth/me", headers=token)
        assert me.json()["role"] == "none"
        assert me.json()["projects"] == {project: "operator"}
        listed = await client.get(f"{V1}/instances", params={"project": project}, headers=token)
        assert [i["name"] for i in listed.json()["items"]] == [name]
        assert (await client.get(f"{V1}/instances", headers=token)).status_code == 404
        assert (await client.get(f"{V1}/storage/pools", headers=token)).status_code == 403
        # An admin's token below admin is held to the operator policy.
        patch = await client.patch(
            f"{V1}/instances/{name}",
            params={"project": project},
            json={"config": {"security.privileged": "true"}},
            headers=token,
        )
        assert patch.status_code == 403
        assert patch.json()["code"] == "policy_violation"
        projects = await client.get(f"{V1}/projects", params={"expand": "false"}, headers=token)
        assert projects.json()["items"] == [project]
    finally:
        await remove_project(lxd_raw, project)


async def test_a_token_opens_a_websocket_and_never_reaches_a_log(
    live_url: str,
    client: httpx.AsyncClient,
    scripted_user: tuple[str, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, login = scripted_user
    token = await _token(client, login, role="viewer")
    url = f"{live_url}{V1}/operations/ws?token={token}&type=lifecycle"
    async with connect(url, ping_interval=None, open_timeout=30) as ws:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)  # open, nothing to say yet
    await asyncio.sleep(0.2)
    out = capsys.readouterr()
    assert token not in out.out + out.err
    assert token[4:20] not in out.out + out.err
    for line in out.out.splitlines():
        if line.startswith("{") and "operations/ws" in line:
            assert "lxa_" not in json.dumps(json.loads(line))


async def test_revoking_a_token_ends_its_websocket_sessions(
    live_url: str, client: httpx.AsyncClient, scripted_user: tuple[str, dict[str, str]]
) -> None:
    _, login = scripted_user
    created = await _created(client, login, role="viewer")
    url = f"{live_url}{V1}/operations/ws?token={created['token']}&type=lifecycle"
    async with connect(url, ping_interval=None, open_timeout=30) as ws:
        await asyncio.sleep(0.3)
        revoked = await client.delete(f"{TOKENS}/{created['id']}", headers=login)
        assert revoked.status_code == 204
        assert await close_code(ws, timeout=1.5) == 4401
