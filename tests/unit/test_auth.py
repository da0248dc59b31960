"""Login, refresh (rotation and reuse detection), logout, me, own password change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from app.core.security import create_token
from tests.support.auth import TEST_JWT_SECRET, TEST_USER_PASSWORD

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD = "/api/v1/auth/me/password"

Headers = Callable[..., dict[str, str]]


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"username": username, "password": password})


async def tokens(client: httpx.AsyncClient, username: str = "test-viewer") -> dict[str, str]:
    reply = await login(client, username, TEST_USER_PASSWORD)
    assert reply.status_code == 200, reply.text
    body: dict[str, str] = reply.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_ok(unit_client: httpx.AsyncClient, unit_auth_headers: Headers) -> None:
    reply = await login(unit_client, "test-operator", TEST_USER_PASSWORD)
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    claims = jwt.decode(body["access_token"], TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["type"] == "access"
    assert {"sub", "exp", "iat", "jti", "ver"} <= set(claims)
    me = await unit_client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "test-operator"
    assert me.json()["role"] == "operator"
    assert set(me.json()) == {"username", "role", "is_active", "created_at", "projects"}
    assert me.json()["projects"] == {}


async def test_login_is_case_insensitive_on_the_name(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    reply = await login(unit_client, "TEST-Admin", TEST_USER_PASSWORD)
    assert reply.status_code == 200


async def test_wrong_password_and_unknown_user_get_the_same_401(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    wrong = await login(unit_client, "test-admin", "not-the-password")
    unknown = await login(unit_client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_user_still_spends_a_verification(
    unit_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core import security

    calls: list[str] = []
    real = security._verify_and_update

    def spy(password: str, hashed: str) -> tuple[bool, str | None]:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(security, "_verify_and_update", spy)
    reply = await login(unit_client, "ghost", "whatever-password")
    assert reply.status_code == 401
    assert calls == [security.DUMMY_HASH]


async def test_login_validation(unit_client: httpx.AsyncClient) -> None:
    too_long = await login(unit_client, "someone", "x" * 129)
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "validation_error"
    assert "x" * 129 not in too_long.text  # the password is not echoed
    missing = await unit_client.post(LOGIN, json={"username": "a"})
    assert missing.status_code == 422


async def test_token_form_login_for_swagger(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    form = {"grant_type": "password", "username": "test-viewer", "password": TEST_USER_PASSWORD}
    reply = await unit_client.post("/api/v1/auth/token", data=form)
    assert reply.status_code == 200, reply.text
    assert reply.json()["token_type"] == "bearer"
    me = await unit_client.get(ME, headers=bearer(reply.json()["access_token"]))
    assert me.status_code == 200
    bad = await unit_client.post("/api/v1/auth/token", data={**form, "password": "nope-nope"})
    assert bad.status_code == 401
    not_form = await unit_client.post("/api/v1/auth/token", json=form)
    assert not_form.status_code == 415
    no_name = await unit_client.post("/api/v1/auth/token", data={"password": "x"})
    assert no_name.status_code == 422


async def test_refresh_rotates(unit_client: httpx.AsyncClient, unit_auth_headers: Headers) -> None:
    first = await tokens(unit_client)
    second = await unit_client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert (await unit_client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    # The spent token is refused...
    again = await unit_client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401
    # ...and its reuse revoked the whole family: the token it was rotated into is dead too.
    third = await unit_client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert third.status_code == 401


async def test_reuse_does_not_touch_other_logins(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    stolen = await tokens(unit_client)
    other = await tokens(unit_client)
    await unit_client.post(REFRESH, json={"refresh_token": stolen["refresh_token"]})
    await unit_client.post(REFRESH, json={"refresh_token": stolen["refresh_token"]})
    ok = await unit_client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert ok.status_code == 200


async def test_access_token_is_not_a_refresh_token_and_the_reverse(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    pair = await tokens(unit_client)
    as_refresh = await unit_client.post(REFRESH, json={"refresh_token": pair["access_token"]})
    assert as_refresh.status_code == 401
    as_access = await unit_client.get(ME, headers=bearer(pair["refresh_token"]))
    assert as_access.status_code == 401
    assert as_access.headers["WWW-Authenticate"] == "Bearer"


def _forge(app: FastAPI, **changes: object) -> str:
    user_id, version = app.state.test_auth.users["admin"]
    now = datetime.now(UTC)
    payload: dict[str, object] = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j1",
        "type": "access",
        "ver": version,
    }
    payload.update(changes)
    secret = str(payload.pop("_secret", TEST_JWT_SECRET))
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, "HS256")


async def test_forged_and_broken_tokens_are_refused(
    unit_app: FastAPI, unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    good = _forge(unit_app)
    assert (await unit_client.get(ME, headers=bearer(good))).status_code == 200

    past = datetime.now(UTC) - timedelta(hours=1)
    expired = _forge(unit_app, iat=past, exp=past + timedelta(minutes=5))
    wrong_secret = _forge(unit_app, _secret="another-secret-" + "y" * 40)
    header, payload, signature = good.split(".")
    tampered_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"type":"access"', b'"type":"accesz"')
    ).decode()
    tampered = f"{header}.{tampered_payload}.{signature}"
    alg_none = jwt.encode(jwt.decode(good, options={"verify_signature": False}), None, "none")
    no_type = _forge(unit_app, type=None)
    no_exp = _forge(unit_app, exp=None)
    no_version = _forge(unit_app, ver=None)
    wrong_version = _forge(unit_app, ver=99)
    unknown_user = _forge(unit_app, sub="424242")
    for name, token in {
        "expired": expired,
        "wrong_secret": wrong_secret,
        "tampered": tampered,
        "alg_none": alg_none,
        "no_type": no_type,
        "no_exp": no_exp,
        "no_version": no_version,
        "wrong_version": wrong_version,
        "unknown_user": unknown_user,
        "garbage": "not.a.jwt",
    }.items():
        reply = await unit_client.get(ME, headers=bearer(token))
        assert reply.status_code == 401, name
        assert reply.json()["code"] in {"invalid_token", "unauthorized"}, name
        assert reply.headers["WWW-Authenticate"] == "Bearer", name
    expired_reply = await unit_client.get(ME, headers=bearer(expired))
    assert "expired" in expired_reply.json()["detail"].lower()


async def test_expired_refresh_token_is_refused(
    unit_app: FastAPI, unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    user_id, version = unit_app.state.test_auth.users["viewer"]
    token, _ = create_token(
        unit_app.state.settings,
        user_id=user_id,
        token_version=version,
        kind="refresh",
        now=datetime.now(UTC) - timedelta(days=30),
    )
    reply = await unit_client.post(REFRESH, json={"refresh_token": token})
    assert reply.status_code == 401


async def test_unknown_refresh_token_is_refused(
    unit_app: FastAPI, unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    # Well signed, but never issued (not in the store).
    user_id, version = unit_app.state.test_auth.users["viewer"]
    token, _ = create_token(
        unit_app.state.settings, user_id=user_id, token_version=version, kind="refresh"
    )
    assert (await unit_client.post(REFRESH, json={"refresh_token": token})).status_code == 401


async def test_no_token_is_401_with_challenge(unit_client: httpx.AsyncClient) -> None:
    reply = await unit_client.get(ME)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert reply.json()["code"] == "unauthorized"
    assert reply.json()["request_id"] == reply.headers["X-Request-ID"]


async def test_logout_revokes_the_refresh_token(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    pair = await tokens(unit_client)
    body = {"refresh_token": pair["refresh_token"]}
    out = await unit_client.post(LOGOUT, json=body, headers=bearer(pair["access_token"]))
    assert out.status_code == 204
    assert out.content == b""
    assert (await unit_client.post(REFRESH, json=body)).status_code == 401
    # The access token it came with is refused from now on, and a logout is not repeated.
    assert (await unit_client.get(ME, headers=bearer(pair["access_token"]))).status_code == 401
    again = await unit_client.post(LOGOUT, json=body, headers=bearer(pair["access_token"]))
    assert again.status_code == 401


async def test_logout_ends_only_that_login(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    """Another login of the same user (another browser, a script) keeps working; the logged
    out access token is refused on reads that check beside LXD too."""
    one, two = await tokens(unit_client), await tokens(unit_client)
    out = await unit_client.post(
        LOGOUT, json={"refresh_token": one["refresh_token"]}, headers=bearer(one["access_token"])
    )
    assert out.status_code == 204
    for path in (ME, "/api/v1/instances"):
        refused = await unit_client.get(path, headers=bearer(one["access_token"]))
        assert refused.status_code == 401, path
        assert refused.json()["code"] == "invalid_token"
    assert (await unit_client.get(ME, headers=bearer(two["access_token"]))).status_code == 200
    refreshed = await unit_client.post(REFRESH, json={"refresh_token": two["refresh_token"]})
    assert refreshed.status_code == 200


async def test_logout_needs_a_token_and_your_own_refresh_token(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    mine = await tokens(unit_client, "test-viewer")
    theirs = await tokens(unit_client, "test-operator")
    body = {"refresh_token": theirs["refresh_token"]}
    assert (await unit_client.post(LOGOUT, json=body)).status_code == 401
    foreign = await unit_client.post(LOGOUT, json=body, headers=bearer(mine["access_token"]))
    assert foreign.status_code == 401
    still = await unit_client.post(REFRESH, json=body)
    assert still.status_code == 200
    access = {"refresh_token": mine["access_token"]}
    wrong_kind = await unit_client.post(LOGOUT, json=access, headers=bearer(mine["access_token"]))
    assert wrong_kind.status_code == 401


async def _make_user(
    client: httpx.AsyncClient, headers: Headers, username: str, role: str = "viewer"
) -> None:
    body = {"username": username, "password": "first-password", "role": role}
    reply = await client.post("/api/v1/auth/register", json=body, headers=headers("admin"))
    assert reply.status_code == 201, reply.text


async def test_password_change_cuts_off_old_tokens(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await _make_user(unit_client, unit_auth_headers, "carol")
    old = (await login(unit_client, "carol", "first-password")).json()
    change = {"current_password": "first-password", "new_password": "second-password"}
    reply = await unit_client.put(PASSWORD, json=change, headers=bearer(old["access_token"]))
    assert reply.status_code == 204
    assert (await unit_client.get(ME, headers=bearer(old["access_token"]))).status_code == 401
    refreshed = await unit_client.post(REFRESH, json={"refresh_token": old["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await login(unit_client, "carol", "first-password")).status_code == 401
    new = await login(unit_client, "carol", "second-password")
    assert new.status_code == 200


async def test_password_change_checks_the_current_password_and_the_rules(
    unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    await _make_user(unit_client, unit_auth_headers, "dave")
    pair = (await login(unit_client, "dave", "first-password")).json()
    headers = bearer(pair["access_token"])
    wrong = {"current_password": "not-it-at-all", "new_password": "second-password"}
    reply = await unit_client.put(PASSWORD, json=wrong, headers=headers)
    assert reply.status_code == 400
    assert reply.json()["code"] == "wrong_password"
    for bad in ("short", "x" * 129):
        body = {"current_password": "first-password", "new_password": bad}
        assert (await unit_client.put(PASSWORD, json=body, headers=headers)).status_code == 422
    # Still the old password, still the old token.
    assert (await unit_client.get(ME, headers=headers)).status_code == 200


async def test_login_purges_the_users_expired_refresh_tokens(
    unit_app: FastAPI, unit_client: httpx.AsyncClient, unit_auth_headers: Headers
) -> None:
    from sqlalchemy import select

    from app.db import crud
    from app.db.models import RefreshToken

    user_id, _ = unit_app.state.test_auth.users["viewer"]
    other_id, _ = unit_app.state.test_auth.users["operator"]
    long_ago = datetime.now(UTC) - timedelta(days=1)
    async with unit_app.state.db_sessionmaker() as session:
        for jti, owner in (("old-mine", user_id), ("old-theirs", other_id)):
            await crud.add_refresh_token(
                session, jti=jti, user_id=owner, family_id=jti, expires_at=long_ago
            )
        await session.commit()
    await tokens(unit_client, "test-viewer")
    async with unit_app.state.db_sessionmaker() as session:
        left = set((await session.scalars(select(RefreshToken.id))).all())
    assert "old-mine" not in left
    assert "old-theirs" in left
    assert len(left) == 2
