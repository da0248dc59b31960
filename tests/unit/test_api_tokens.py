"""API tokens without LXD: the rights a token has (`token_rights`), the secret's shape and
storage, `last_used_at` kept to the minute, and the routes' refusals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.auth.access import highest_role, token_rights
from app.auth.tokens import secret_hash
from app.core.security import Role
from app.db.models import ApiToken

V1 = "/api/v1"
TOKENS = f"{V1}/auth/tokens"


@dataclass
class Member:
    role: str
    projects: Mapping[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("user", "token_role", "token_projects", "expected"),
    [
        (Member("admin"), "admin", None, ("admin", {})),
        (Member("admin"), "viewer", None, ("viewer", {})),
        (Member("operator", {"p": "operator"}), "viewer", None, ("viewer", {"p": "viewer"})),
        # The user's role went down after the token was made: the token follows.
        (Member("viewer"), "operator", None, ("viewer", {})),
        (
            Member("none", {"p": "operator", "q": "viewer"}),
            "operator",
            ["p"],
            ("none", {"p": "operator"}),
        ),
        (Member("none", {"p": "viewer"}), "operator", ["p", "q"], ("none", {"p": "viewer"})),
        (Member("admin"), "operator", ["p"], ("none", {"p": "operator"})),
        (Member("none"), "operator", ["p"], ("none", {})),
    ],
)
def test_a_token_has_the_least_of_its_rights_and_its_users(
    user: Member,
    token_role: str,
    token_projects: list[str] | None,
    expected: tuple[str, dict[str, str]],
) -> None:
    global_role, projects = token_rights(user, token_role, token_projects)
    assert (global_role.value, projects) == expected


def test_highest_role() -> None:
    assert highest_role(Member("none", {"p": "operator"})) == Role.operator
    assert highest_role(Member("viewer")) == Role.viewer


async def test_the_secret_is_shown_once_and_stored_hashed(
    unit_app: FastAPI,
    unit_client: httpx.AsyncClient,
    unit_auth_headers: Callable[..., dict[str, str]],
) -> None:
    reply = await unit_client.post(
        TOKENS, json={"name": "ci"}, headers=unit_auth_headers("operator")
    )
    assert reply.status_code == 201
    body: dict[str, Any] = reply.json()
    assert set(body) == {
        "id",
        "name",
        "token",
        "role",
        "projects",
        "created_at",
        "expires_at",
        "last_used_at",
    }
    assert body["role"] == "operator"
    assert body["projects"] is None
    async with unit_app.state.db_sessionmaker() as session:
        row = (await session.scalars(select(ApiToken))).one()
    assert row.secret_hash == secret_hash(body["token"])
    assert body["token"] not in str(vars(row))
    listed = await unit_client.get(TOKENS, headers=unit_auth_headers("operator"))
    assert body["token"] not in listed.text
    assert listed.json()[0]["id"] == body["id"]


async def test_last_used_is_written_once_a_minute(
    unit_app: FastAPI,
    unit_client: httpx.AsyncClient,
    unit_auth_headers: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.auth import tokens as api_tokens

    reply = await unit_client.post(TOKENS, json={"name": "ci"}, headers=unit_auth_headers("viewer"))
    secret = reply.json()["token"]
    writes: list[str] = []
    real_touch = api_tokens.store.touch

    async def counted(engine: Any, token_id: str, when: Any) -> None:
        writes.append(token_id)
        await real_touch(engine, token_id, when)

    monkeypatch.setattr(api_tokens.store, "touch", counted)
    for _ in range(5):
        me = await unit_client.get(f"{V1}/auth/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200
    assert len(writes) == 1


async def test_unknown_and_malformed_tokens_are_401(unit_client: httpx.AsyncClient) -> None:
    for value in ("lxa_" + "A" * 43, "lxa_", "lxa_../../etc"):
        reply = await unit_client.get(f"{V1}/auth/me", headers={"Authorization": f"Bearer {value}"})
        assert reply.status_code == 401, value
        assert reply.json()["code"] == "invalid_token"
        assert value not in reply.text


async def test_revoking_another_users_token(
    unit_client: httpx.AsyncClient, unit_auth_headers: Callable[..., dict[str, str]]
) -> None:
    reply = await unit_client.post(TOKENS, json={"name": "x"}, headers=unit_auth_headers("viewer"))
    token_id = reply.json()["id"]
    other = await unit_client.delete(f"{TOKENS}/{token_id}", headers=unit_auth_headers("operator"))
    assert other.status_code == 404
    admin = await unit_client.delete(f"{TOKENS}/{token_id}", headers=unit_auth_headers("admin"))
    assert admin.status_code == 204
    bad = await unit_client.delete(f"{TOKENS}/../x", headers=unit_auth_headers("admin"))
    assert bad.status_code in (404, 422)
