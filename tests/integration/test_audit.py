"""The audit log against the real LXD, in both modes (API.md, Part 2, "Audit log"): a start
through the API is in `GET /audit` with its actor, target, status and operation, and the
operation says who requested it; a refused admin route is there with its 403; a failed login
with the username it tried and no password anywhere; an API token's secret never appears;
an edited row makes `/audit/verify` name it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.db.models import AuditEntry
from tests.support.auth import TEST_USER_PASSWORD

pytestmark = pytest.mark.integration

V1 = "/api/v1"
AUDIT = f"{V1}/audit"


async def audit_items(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    reply = await client.get(AUDIT, params={"limit": 1000, **params}, headers=headers)
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def export_text(client: httpx.AsyncClient, headers: dict[str, str], fmt: str) -> str:
    reply = await client.get(f"{AUDIT}/export", params={"format": fmt}, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-disposition"].startswith("attachment")
    return reply.text


async def test_an_instance_start_is_audited_and_its_operation_names_who(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    stopped_instance: str,
) -> None:
    operator, admin = auth_headers("operator"), auth_headers("admin")
    reply = await client.post(f"{V1}/instances/{stopped_instance}/start", headers=operator)
    assert reply.status_code == 202, reply.text
    operation_id = reply.json()["operation_id"]

    got = await client.get(f"{V1}/operations/{operation_id}", headers=operator)
    assert got.status_code == 200, got.text
    assert got.json()["requested_by"] == "test-operator"
    waited = await client.get(f"{V1}/operations/{operation_id}/wait?timeout=60", headers=operator)
    assert waited.json()["status"] == "Success", waited.text
    assert waited.json()["requested_by"] == "test-operator"

    [item] = await audit_items(client, admin, target=f"instances/{stopped_instance}")
    assert item["actor"] == "test-operator"
    assert (item["method"], item["path"]) == ("POST", f"{V1}/instances/{stopped_instance}/start")
    assert (item["status"], item["operation_id"], item["project"]) == (
        202,
        operation_id,
        "default",
    )
    assert item["request_id"] == reply.headers["X-Request-ID"]

    # Operations started elsewhere (straight at LXD) have nobody.
    listed = await client.get(f"{V1}/operations", headers=operator)
    assert listed.status_code == 200
    for operation in listed.json()["items"]:
        assert "requested_by" in operation
    verified = (await client.get(f"{AUDIT}/verify", headers=admin)).json()
    assert verified["ok"] is True, verified


async def test_a_refused_admin_route_is_audited_with_its_403(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[..., str],
) -> None:
    pool = unique("ap")
    reply = await client.delete(f"{V1}/storage/pools/{pool}", headers=auth_headers("operator"))
    assert reply.status_code == 403
    [item] = await audit_items(client, auth_headers("admin"), target=f"storage/pools/{pool}")
    assert (item["actor"], item["method"], item["status"], item["detail"]) == (
        "test-operator",
        "DELETE",
        403,
        "forbidden",
    )
    assert item["operation_id"] is None


async def test_a_failed_login_is_audited_without_the_password(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[..., str],
) -> None:
    username, password = unique("who"), unique("Secret-Pa55-")
    reply = await client.post(f"{V1}/auth/login", json={"username": username, "password": password})
    assert reply.status_code == 401
    admin = auth_headers("admin")
    [item] = await audit_items(client, admin, actor=username)
    assert (item["path"], item["status"], item["token_id"]) == (f"{V1}/auth/login", 401, None)
    for fmt in ("jsonl", "csv"):
        text = await export_text(client, admin, fmt)
        assert username in text
        assert password not in text


async def test_an_api_token_secret_never_appears(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[..., str],
    stopped_instance: str,
) -> None:
    admin = auth_headers("admin")
    login = await client.post(
        f"{V1}/auth/login", json={"username": "test-operator", "password": TEST_USER_PASSWORD}
    )
    access = login.json()["access_token"]
    created = await client.post(
        f"{V1}/auth/tokens",
        json={"name": unique("ci")},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["id"]
    try:
        bearer = {"Authorization": f"Bearer {token}"}
        started = await client.post(
            f"{V1}/instances/{stopped_instance}/start?wait=true", headers=bearer
        )
        assert started.status_code == 200, started.text
        # Misplaced secrets: in a query string, in a path.
        await client.post(f"{V1}/instances/{stopped_instance}/stop?token={token}")
        await client.delete(f"{V1}/auth/tokens/{token}", headers=admin)

        [item] = await audit_items(
            client, admin, target=f"instances/{stopped_instance}", status=200
        )
        assert (item["actor"], item["token_id"]) == ("test-operator", token_id)
        secret = token.removeprefix("lxa_")
        for fmt in ("jsonl", "csv"):
            text = await export_text(client, admin, fmt)
            assert token_id in text
            assert secret not in text
            assert access not in text
    finally:
        await client.delete(f"{V1}/auth/tokens/{token_id}", headers=admin)


async def test_an_edited_row_is_named_by_verify(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[..., str],
) -> None:
    admin = auth_headers("admin")
    pool = unique("ep")
    await client.delete(f"{V1}/storage/pools/{pool}", headers=auth_headers("viewer"))
    [item] = await audit_items(client, admin, target=f"storage/pools/{pool}")
    assert (await client.get(f"{AUDIT}/verify", headers=admin)).json()["ok"] is True

    async with app.state.db_sessionmaker() as session:
        original = (
            await session.execute(select(AuditEntry.actor).where(AuditEntry.id == item["id"]))
        ).scalar_one()
        await session.execute(
            update(AuditEntry).where(AuditEntry.id == item["id"]).values(actor="test-admin")
        )
        await session.commit()
    try:
        body = (await client.get(f"{AUDIT}/verify", headers=admin)).json()
        assert (body["ok"], body["first_bad_id"]) == (False, item["id"]), body
    finally:
        async with app.state.db_sessionmaker() as session:
            await session.execute(
                update(AuditEntry).where(AuditEntry.id == item["id"]).values(actor=original)
            )
            await session.commit()
    assert (await client.get(f"{AUDIT}/verify", headers=admin)).json()["ok"] is True
