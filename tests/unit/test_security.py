"""The security core: roles, password hashing (Argon2id, bcrypt still verified and rehashed,
always off the event loop) and JWTs (HS256 only, required claims, types)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pwdlib.hashers.bcrypt import BcryptHasher

from app.core import security
from app.core.config import Settings
from app.core.security import (
    Role,
    TokenError,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)

SECRET = "s" * 48


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None, JWT_SECRET=SECRET)


# --- roles ---------------------------------------------------------------------------------------
def test_role_levels_are_hierarchical() -> None:
    assert [r.level for r in (Role.viewer, Role.operator, Role.admin)] == [1, 2, 3]
    assert Role.admin.admits(Role.viewer)
    assert Role.operator.admits(Role.operator)
    assert not Role.viewer.admits(Role.operator)
    assert not Role.operator.admits(Role.admin)
    assert Role("admin") is Role.admin


# --- passwords -----------------------------------------------------------------------------------
async def test_new_hashes_are_argon2id_and_verify() -> None:
    hashed = await hash_password("a-fine-password")
    assert hashed.startswith("$argon2id$")
    assert await verify_password("a-fine-password", hashed) == (True, None)
    assert (await verify_password("another-password", hashed))[0] is False


async def test_bcrypt_hashes_verify_and_come_back_as_argon2() -> None:
    old = BcryptHasher().hash("legacy-password")
    ok, new_hash = await verify_password("legacy-password", old)
    assert ok
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$")
    assert await verify_password("legacy-password", new_hash) == (True, None)
    assert (await verify_password("wrong-password", old)) == (False, None)


async def test_odd_inputs_verify_as_false_instead_of_raising() -> None:
    old = BcryptHasher().hash("legacy-password")
    # bcrypt 5 refuses secrets over 72 bytes: that is a wrong password, not a 500.
    assert (await verify_password("x" * 100, old))[0] is False
    assert (await verify_password("whatever", "not-a-hash"))[0] is False


async def test_unknown_user_spends_a_dummy_verification() -> None:
    assert security.DUMMY_HASH.startswith("$argon2id$")
    assert await verify_password("anything", None) == (False, None)


async def test_hashing_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    niceness: list[int] = []
    real_hash = security.password_hash.hash
    real_verify = security._verify_and_update

    def record() -> None:
        threads.append(threading.get_ident())
        if sys.platform == "linux":
            niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    def spy_hash(password: str) -> str:
        record()
        return real_hash(password)

    def spy_verify(password: str, hashed: str) -> tuple[bool, str | None]:
        record()
        return real_verify(password, hashed)

    monkeypatch.setattr(security.password_hash, "hash", spy_hash)
    monkeypatch.setattr(security, "_verify_and_update", spy_verify)
    hashed = await hash_password("password-one")
    await verify_password("password-one", hashed)
    await verify_password("password-one", None)
    assert len(threads) == 3
    assert loop_thread not in threads
    # Low priority: a burst of logins must not take the CPU from the event loop.
    assert all(n >= security.HASH_NICENESS for n in niceness)


async def test_login_rehashes_a_bcrypt_hash(
    unit_app: FastAPI, unit_client: httpx.AsyncClient
) -> None:
    from app.db import crud

    async with unit_app.state.db_sessionmaker() as session:
        await crud.create_user(
            session,
            username="oldtimer",
            password_hash=BcryptHasher().hash("from-the-old-days"),
            role=Role.viewer,
        )
        await session.commit()
    body = {"username": "oldtimer", "password": "from-the-old-days"}
    reply = await unit_client.post("/api/v1/auth/login", json=body)
    assert reply.status_code == 200
    async with unit_app.state.db_sessionmaker() as session:
        user = await crud.get_user_by_username(session, "oldtimer")
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        version = user.token_version
    # Same password, new hash: the tokens just issued keep working.
    assert version == 0
    me = await unit_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {reply.json()['access_token']}"}
    )
    assert me.status_code == 200
    again = await unit_client.post("/api/v1/auth/login", json=body)
    assert again.status_code == 200


# --- tokens --------------------------------------------------------------------------------------
def test_token_round_trip(settings: Settings) -> None:
    token, claims = create_token(settings, user_id=7, token_version=3, kind="access")
    decoded = decode_token(settings, token, expected_type="access")
    assert decoded == claims
    raw = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert raw["sub"] == "7"
    assert raw["type"] == "access"
    assert raw["ver"] == 3
    assert raw["exp"] - raw["iat"] == settings.JWT_ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_refresh_lifetime_comes_from_the_settings(settings: Settings) -> None:
    _, claims = create_token(settings, user_id=1, token_version=0, kind="refresh")
    lifetime = claims.expires_at - claims.issued_at
    assert lifetime == timedelta(days=settings.JWT_REFRESH_TOKEN_EXPIRE_DAYS)


def test_jti_is_unique(settings: Settings) -> None:
    first = create_token(settings, user_id=1, token_version=0, kind="access")[1]
    second = create_token(settings, user_id=1, token_version=0, kind="access")[1]
    assert first.jti != second.jti


def test_type_confusion_is_refused(settings: Settings) -> None:
    access, _ = create_token(settings, user_id=1, token_version=0, kind="access")
    refresh, _ = create_token(settings, user_id=1, token_version=0, kind="refresh")
    with pytest.raises(TokenError):
        decode_token(settings, access, expected_type="refresh")
    with pytest.raises(TokenError):
        decode_token(settings, refresh, expected_type="access")


def _payload(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "sub": "1",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "x",
        "type": "access",
        "ver": 0,
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: jwt.encode(
        _payload(
            iat=datetime.now(UTC) - timedelta(hours=2), exp=datetime.now(UTC) - timedelta(hours=1)
        ),
        SECRET,
        "HS256",
    ),
    "wrong_secret": lambda: jwt.encode(_payload(), "t" * 48, "HS256"),
    "alg_none": lambda: jwt.encode(_payload(), None, "none"),
    "hs384": lambda: jwt.encode(_payload(), SECRET, "HS384"),  # only HS256 is allowed
    "no_sub": lambda: jwt.encode(_payload(sub=None), SECRET, "HS256"),
    "no_exp": lambda: jwt.encode(_payload(exp=None), SECRET, "HS256"),
    "no_iat": lambda: jwt.encode(_payload(iat=None), SECRET, "HS256"),
    "no_jti": lambda: jwt.encode(_payload(jti=None), SECRET, "HS256"),
    "no_type": lambda: jwt.encode(_payload(type=None), SECRET, "HS256"),
    "no_ver": lambda: jwt.encode(_payload(ver=None), SECRET, "HS256"),
    "sub_not_a_number": lambda: jwt.encode(_payload(sub="admin"), SECRET, "HS256"),
    "truncated": lambda: jwt.encode(_payload(), SECRET, "HS256")[:-5],
    "garbage": lambda: "a.b.c",
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused(settings: Settings, name: str) -> None:
    with pytest.raises(TokenError):
        decode_token(settings, BAD_TOKENS[name](), expected_type="access")


def test_a_good_hand_made_token_passes(settings: Settings) -> None:
    token = jwt.encode(_payload(), SECRET, "HS256")
    assert decode_token(settings, token, expected_type="access").user_id == 1


def test_expired_refresh_token_can_be_read_for_logout(settings: Settings) -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    token, _ = create_token(settings, user_id=1, token_version=0, kind="refresh", now=past)
    with pytest.raises(TokenError, match="expired"):
        decode_token(settings, token, expected_type="refresh")
    claims = decode_token(settings, token, expected_type="refresh", verify_exp=False)
    assert claims.user_id == 1
