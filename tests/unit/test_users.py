"""Registration and user administration: conflicts, validation, changes that cut off tokens,
the last-admin guard, and no password hash in any reply. Also the seeded admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.db.models import RefreshToken, User

REGISTER = "/api/v1/auth/register"
USERS = "/api/v1/users"
ME = "/api/v1/auth/me"

Headers = Callable[..., dict[str, str]]


async def register(
    client: httpx.AsyncClient,
    headers: Headers,
    username: str,
    role: str = "viewer",
    password: str = "password-123",  # noqa: S107 - a test password
) -> httpx.Response:
    body = {"username": username, "password": password, "role": role}
    return await client.post(REGISTER, json=body, headers=headers("admin"))


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def bearer_for(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    reply = await login(client, username, password)
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def assert_no_secret(text: str) -> None:
    for marker in ("password_hash", "$argon2", "$2b$", "password-123"):
        assert marker not in text, marker


async def test_register_creates_a_user(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    reply = await register(unit_client, unit_auth_headers, "Alice", role="operator")
    assert reply.status_code == 201
    body = reply.json()
    assert body["username"] == "Alice"
    assert body["role"] == "operator"
    assert body["is_active"] is True
    assert set(body) == {"username", "role", "is_active", "created_at", "projects"}
    assert_no_secret(reply.text)
    assert (await login(unit_client, "alice", "password-123")).status_code == 200


async def test_register_defaults_to_viewer(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    body = {"username": "plain", "password": "password-123"}
    reply = await unit_client.post(REGISTER, json=body, headers=unit_auth_headers("admin"))
    assert reply.json()["role"] == "viewer"


async def test_register_conflicts_regardless_of_case(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    assert (await register(unit_client, unit_auth_headers, "bob")).status_code == 201
    for name in ("bob", "BOB", "Bob"):
        reply = await register(unit_client, unit_auth_headers, name)
        assert reply.status_code == 409, name
        assert reply.json()["code"] == "username_taken"


@pytest.mark.parametrize(
    ("username", "password", "role"),
    [
        ("a", "password-123", "viewer"),  # too short
        ("x" * 65, "password-123", "viewer"),  # too long
        ("-dash-first", "password-123", "viewer"),
        ("has space", "password-123", "viewer"),
        ("slash/name", "password-123", "viewer"),
        ("okname", "short", "viewer"),  # 5 < 8
        ("okname", "p" * 129, "viewer"),  # > 128
        ("okname", "password-123", "root"),  # no such role
    ],
)
async def test_register_validation(
    unit_client: httpx.AsyncClient,
    unit_auth_headers: Headers,
    username: str,
    password: str,
    role: str,
) -> None:
    reply = await register(unit_client, unit_auth_headers, username, role, password)
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_error"


async def test_password_bounds_are_inclusive(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    assert (
        await register(unit_client, unit_auth_headers, "eight", password="8" * 8)
    ).status_code == 201
    long_ok = await register(unit_client, unit_auth_headers, "long", password="l" * 128)
    assert long_ok.status_code == 201


async def test_register_and_users_need_admin(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    body = {"username": "eve", "password": "password-123"}
    assert (await unit_client.post(REGISTER, json=body)).status_code == 401
    as_operator = await unit_client.post(REGISTER, json=body, headers=unit_auth_headers("operator"))
    assert as_operator.status_code == 403
    assert (await unit_client.get(USERS, headers=unit_auth_headers("operator"))).status_code == 403


async def test_list_and_get_users(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "Zed")
    reply = await unit_client.get(USERS, headers=unit_auth_headers("admin"))
    assert reply.status_code == 200
    page = reply.json()
    names = [u["username"] for u in page["items"]]
    assert names == sorted(names, key=str.lower)
    assert {"test-admin", "test-operator", "test-viewer", "Zed"} <= set(names)
    assert page["total"] == len(names)
    assert_no_secret(reply.text)

    paged = await unit_client.get(
        USERS, params={"limit": 1, "offset": 1}, headers=unit_auth_headers()
    )
    assert paged.json()["items"] == page["items"][1:2]
    assert paged.json()["total"] == page["total"]
    assert paged.json()["limit"] == 1
    # Past what SQLite's 64-bit integers hold: a 422 before the store, not an OverflowError 500.
    for offset in ("17335346881669158846595072", str(2**31)):
        huge = await unit_client.get(USERS, params={"offset": offset}, headers=unit_auth_headers())
        assert huge.status_code == 422, offset
        assert huge.json()["code"] == "validation_error"
    last = await unit_client.get(USERS, params={"offset": 2**31 - 1}, headers=unit_auth_headers())
    assert last.status_code == 200
    assert last.json()["items"] == []

    one = await unit_client.get(f"{USERS}/zed", headers=unit_auth_headers())
    assert one.status_code == 200
    assert one.json()["username"] == "Zed"
    assert_no_secret(one.text)
    missing = await unit_client.get(f"{USERS}/nobody", headers=unit_auth_headers())
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    bad = await unit_client.get(f"{USERS}/..", headers=unit_auth_headers())
    assert bad.status_code in {404, 422}


async def test_disabling_a_user_takes_effect_on_the_next_request(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "frank", role="operator")
    headers = await bearer_for(unit_client, "frank", "password-123")
    refresh = (await login(unit_client, "frank", "password-123")).json()["refresh_token"]
    assert (await unit_client.get(ME, headers=headers)).status_code == 200
    reply = await unit_client.patch(
        f"{USERS}/frank", json={"is_active": False}, headers=unit_auth_headers()
    )
    assert reply.status_code == 200
    assert reply.json()["is_active"] is False
    assert (await unit_client.get(ME, headers=headers)).status_code == 401
    refused = await unit_client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert refused.status_code == 401
    assert (await login(unit_client, "frank", "password-123")).status_code == 401
    # Enabled again: logging in works, the old tokens stay dead.
    await unit_client.patch(f"{USERS}/frank", json={"is_active": True}, headers=unit_auth_headers())
    assert (await login(unit_client, "frank", "password-123")).status_code == 200
    assert (await unit_client.get(ME, headers=headers)).status_code == 401


async def test_role_change_takes_effect_on_the_next_request(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "grace", role="admin")
    headers = await bearer_for(unit_client, "grace", "password-123")
    assert (await unit_client.get(USERS, headers=headers)).status_code == 200
    reply = await unit_client.patch(
        f"{USERS}/grace", json={"role": "viewer"}, headers=unit_auth_headers()
    )
    assert reply.json()["role"] == "viewer"
    assert (await unit_client.get(USERS, headers=headers)).status_code == 401
    fresh = await bearer_for(unit_client, "grace", "password-123")
    assert (await unit_client.get(USERS, headers=fresh)).status_code == 403
    me = await unit_client.get(ME, headers=fresh)
    assert me.json()["role"] == "viewer"


async def test_password_reset_by_an_admin(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "heidi")
    headers = await bearer_for(unit_client, "heidi", "password-123")
    short = await unit_client.patch(
        f"{USERS}/heidi", json={"password": "short"}, headers=unit_auth_headers()
    )
    assert short.status_code == 422
    reply = await unit_client.patch(
        f"{USERS}/heidi", json={"password": "brand-new-password"}, headers=unit_auth_headers()
    )
    assert reply.status_code == 200
    assert_no_secret(reply.text)
    assert (await unit_client.get(ME, headers=headers)).status_code == 401
    assert (await login(unit_client, "heidi", "password-123")).status_code == 401
    assert (await login(unit_client, "heidi", "brand-new-password")).status_code == 200


async def test_patch_refuses_unknown_fields_and_users(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "ivan")
    typo = await unit_client.patch(
        f"{USERS}/ivan", json={"active": False}, headers=unit_auth_headers()
    )
    assert typo.status_code == 422
    ghost = await unit_client.patch(
        f"{USERS}/ghost", json={"role": "admin"}, headers=unit_auth_headers()
    )
    assert ghost.status_code == 404


async def test_an_empty_patch_changes_nothing(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "judy")
    headers = await bearer_for(unit_client, "judy", "password-123")
    reply = await unit_client.patch(f"{USERS}/judy", json={}, headers=unit_auth_headers())
    assert reply.status_code == 200
    same_role = await unit_client.patch(
        f"{USERS}/judy", json={"role": "viewer"}, headers=unit_auth_headers()
    )
    assert same_role.status_code == 200
    assert (await unit_client.get(ME, headers=headers)).status_code == 200


async def test_last_admin_cannot_be_demoted_disabled_or_deleted(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    admin = unit_auth_headers("admin")
    for body in ({"role": "operator"}, {"is_active": False}):
        reply = await unit_client.patch(f"{USERS}/test-admin", json=body, headers=admin)
        assert reply.status_code == 409, body
        assert reply.json()["code"] == "last_admin"
    delete = await unit_client.delete(f"{USERS}/test-admin", headers=admin)
    assert delete.status_code == 409
    # Nothing changed: the admin still works with the same token.
    assert (await unit_client.get(ME, headers=admin)).json()["role"] == "admin"

    # With a second admin, one of them may go.
    await register(unit_client, unit_auth_headers, "second-admin", role="admin")
    demote = await unit_client.patch(
        f"{USERS}/second-admin", json={"role": "operator"}, headers=admin
    )
    assert demote.status_code == 200
    # A disabled admin does not count as an admin.
    await register(unit_client, unit_auth_headers, "third-admin", role="admin")
    await unit_client.patch(f"{USERS}/third-admin", json={"is_active": False}, headers=admin)
    assert (await unit_client.delete(f"{USERS}/test-admin", headers=admin)).status_code == 409
    # A non-admin can always be deleted.
    assert (await unit_client.delete(f"{USERS}/second-admin", headers=admin)).status_code == 204


async def test_delete_user_cuts_off_tokens_and_drops_refresh_tokens(
    unit_app: FastAPI, unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await register(unit_client, unit_auth_headers, "ken")
    headers = await bearer_for(unit_client, "ken", "password-123")
    reply = await unit_client.delete(f"{USERS}/KEN", headers=unit_auth_headers())
    assert reply.status_code == 204
    assert reply.content == b""
    assert (await unit_client.get(ME, headers=headers)).status_code == 401
    assert (await unit_client.get(f"{USERS}/ken", headers=unit_auth_headers())).status_code == 404
    assert (
        await unit_client.delete(f"{USERS}/ken", headers=unit_auth_headers())
    ).status_code == 404
    async with unit_app.state.db_sessionmaker() as session:
        user_ids = select(User.id)
        orphans = await session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.user_id.not_in(user_ids))
        )
    assert orphans == 0  # ON DELETE CASCADE (SQLite foreign keys are on)


async def test_no_password_hash_in_any_response(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    replies = [
        await register(unit_client, unit_auth_headers, "leo", role="operator"),
        await unit_client.get(USERS, headers=unit_auth_headers()),
        await unit_client.get(f"{USERS}/leo", headers=unit_auth_headers()),
        await unit_client.patch(
            f"{USERS}/leo", json={"role": "viewer"}, headers=unit_auth_headers()
        ),
        await unit_client.get(ME, headers=unit_auth_headers("viewer")),
        await login(unit_client, "leo", "password-123"),
        await login(unit_client, "leo", "wrong-password"),
        await register(unit_client, unit_auth_headers, "leo"),
        await unit_client.get("/openapi.json"),
    ]
    for reply in replies:
        assert_no_secret(reply.text)
    schema = replies[-1].json()["components"]["schemas"]
    assert "password_hash" not in schema["UserPublic"]["properties"]


# --- the seeded admin ----------------------------------------------------------------------------
async def test_seed_admin_once(
    make_unit_app: Callable[..., Any],
    make_settings: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(
        SEED_ADMIN_USERNAME="root-admin", SEED_ADMIN_PASSWORD="seed-password-1"
    )
    first = await make_unit_app(settings)
    async with first.state.db_sessionmaker() as session:
        users = (await session.scalars(select(User))).all()
    assert [(u.username, u.role) for u in users] == [("root-admin", "admin")]
    transport = httpx.ASGITransport(app=first)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await login(client, "root-admin", "seed-password-1")).status_code == 200

    # A restart on the same database with other seed values changes nothing.
    again = settings.model_copy(
        update={
            "SEED_ADMIN_USERNAME": "other-admin",
            "SEED_ADMIN_PASSWORD": settings.SEED_ADMIN_PASSWORD,
        }
    )
    second = await make_unit_app(again)
    async with second.state.db_sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1
    out = capsys.readouterr()
    assert "seed-password-1" not in out.out + out.err
    assert "auth.seed_admin_created" in out.out


async def test_no_seed_without_both_settings(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    app = await make_unit_app(make_settings(SEED_ADMIN_USERNAME="lonely"))
    async with app.state.db_sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_a_bad_seed_password_stops_the_start(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    from app.db.seed import SeedError

    with pytest.raises(SeedError, match="SEED_ADMIN_PASSWORD"):
        await make_unit_app(make_settings(SEED_ADMIN_USERNAME="admin", SEED_ADMIN_PASSWORD="short"))
