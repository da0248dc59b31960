"""Two API replicas on one PostgreSQL and one Redis (`scripts/replicas.sh`), against the real LXD
in both modes: what one replica does, the other holds at the next request.

The stack is started here (its own REPLICAS_DIR, free loopback ports, its own database) and
stopped afterwards. Without redis-server or PostgreSQL these tests skip with the reason; with
`LXD_REQUIRED=1` (CI) that is a failure.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from app.db.migrations import MIGRATION_LOCK_KEY
from tests.support.lxd_sandbox import REPO, LXDEnv

pytestmark = pytest.mark.integration

SCRIPT = REPO / "scripts" / "replicas.sh"
PG_PORT = os.environ.get("PG_SANDBOX_PORT", "15432")
METRICS_TOKEN = "replicas-metrics-token-0123456789"
PASSWORD = "replica-password-1"
USER_IP_FAILURES = 4  # RATE_LIMIT_LOGIN of the stack: failures per (username, address)


def _missing() -> str:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if shutil.which("pg_isready") is None or shutil.which("psql") is None:
        return "the PostgreSQL client tools (pg_isready, psql) are missing"
    return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_env(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {k: v for k, _, v in pairs if k and not k.startswith("#")}


def _script(env: dict[str, str], *args: str, timeout: float = 240) -> str:
    result = subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"replicas.sh {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _stack_env(lxd_env_file: Path, name: str) -> dict[str, str]:
    """The script's environment for one stack of ours: its dir, free ports, its database."""
    return {
        **os.environ,
        "REPLICAS_DIR": str(REPO / ".sandbox" / f"test-{name}"),
        "REPLICA_PORTS": f"{_free_port()} {_free_port()}",
        "REDIS_PORT": str(_free_port()),
        "REPLICAS_DB": f"lxd_api_test_{name.replace('-', '_')}",
        "REPLICAS_LXD_ENV": str(lxd_env_file),
        # The per (username, address) failure limit is the one under test; the others high,
        # and successes unlimited in practice (every test logs in).
        "RATE_LIMIT_LOGIN": f"{USER_IP_FAILURES}/minute",
        "RATE_LIMIT_LOGIN_IP": "1000/minute",
        "RATE_LIMIT_LOGIN_USER": "1000/hour",
        "RATE_LIMIT_LOGIN_SUCCESS": "1000/minute",
        "METRICS_TOKEN": METRICS_TOKEN,
    }


@dataclass
class Stack:
    a: str
    b: str
    mode: str
    admin: tuple[str, str]
    env: dict[str, str]
    values: dict[str, str]
    users: list[str] = field(default_factory=list)

    @property
    def both(self) -> tuple[str, str]:
        return self.a, self.b


@pytest.fixture(scope="module")
def stack(
    lxd_env: LXDEnv, lxd_mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    reason = _missing()
    if reason:
        if os.environ.get("LXD_REQUIRED") == "1":
            pytest.fail(f"LXD_REQUIRED=1 but the replica tests cannot run: {reason}")
        pytest.skip(f"no replicas: {reason}")
    if lxd_mode == "remote" and not lxd_env.remote_url:
        pytest.skip("the LXD under test has no HTTPS address (LXD_TEST_SOCKET without remote)")
    lxd_file = tmp_path_factory.mktemp("replicas") / "lxd.env"
    lxd_file.write_text(
        "".join(
            f"{key}={value}\n"
            for key, value in {
                "LXD_SOCKET_PATH": lxd_env.socket_path,
                "LXD_REMOTE_URL": lxd_env.remote_url,
                "LXD_CLIENT_CERT_PATH": lxd_env.client_cert,
                "LXD_CLIENT_KEY_PATH": lxd_env.client_key,
                "LXD_TRUSTED_CA_PATH": lxd_env.server_cert,
            }.items()
        )
    )
    env = _stack_env(lxd_file, "replicas")
    _script(env, "down")  # what a killed run left behind
    try:
        _script(env, "up", lxd_mode)
        values = _read_env(Path(env["REPLICAS_DIR"]) / "replicas.env")
        yield Stack(
            a=values["REPLICA_A_URL"],
            b=values["REPLICA_B_URL"],
            mode=lxd_mode,
            admin=(values["REPLICAS_ADMIN_USERNAME"], values["REPLICAS_ADMIN_PASSWORD"]),
            env=env,
            values=values,
        )
    finally:
        _script(env, "down")


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client for both replicas (full URLs); users made by the test are deleted afterwards."""
    async with httpx.AsyncClient(timeout=60) as client:
        made = len(stack.users)
        try:
            yield client
        finally:
            if len(stack.users) > made:
                admin = await _bearer(client, stack.a, *stack.admin)
                for name in stack.users[made:]:
                    reply = await client.delete(f"{stack.a}/api/v1/users/{name}", headers=admin)
                    assert reply.status_code in (204, 404), reply.text
                del stack.users[made:]


def _address() -> str:
    """A client address of its own (X-Forwarded-For from loopback, a trusted proxy)."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


async def _login(
    http: httpx.AsyncClient, url: str, username: str, password: str, address: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    body = {"username": username, "password": password}
    return await http.post(f"{url}/api/v1/auth/login", json=body, headers=headers)


async def _bearer(
    http: httpx.AsyncClient, url: str, username: str, password: str
) -> dict[str, str]:
    reply = await _login(http, url, username, password)
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def _user(http: httpx.AsyncClient, stack: Stack, role: str = "operator") -> str:
    """A fresh user, made through replica A (deleted after the test)."""
    name = f"rep-{uuid.uuid4().hex[:8]}"
    admin = await _bearer(http, stack.a, *stack.admin)
    body = {"username": name, "password": PASSWORD, "role": role}
    reply = await http.post(f"{stack.a}/api/v1/auth/register", json=body, headers=admin)
    assert reply.status_code == 201, reply.text
    stack.users.append(name)
    return name


async def _me(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    return (await http.get(f"{url}/api/v1/auth/me", headers=headers)).status_code


# --- the user store and its tokens --------------------------------------------------------------
async def test_a_login_on_a_works_on_b(stack: Stack, http: httpx.AsyncClient) -> None:
    name = await _user(http, stack)
    pair = (await _login(http, stack.a, name, PASSWORD)).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    me = await http.get(f"{stack.b}/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == name
    assert (await http.get(f"{stack.b}/api/v1/instances", headers=headers)).status_code == 200
    # A's refresh token rotates on B, and the spent one is spent on A too.
    body = {"refresh_token": pair["refresh_token"]}
    rotated = await http.post(f"{stack.b}/api/v1/auth/refresh", json=body)
    assert rotated.status_code == 200, rotated.text
    again = await http.post(f"{stack.a}/api/v1/auth/refresh", json=body)
    assert again.status_code == 401


async def test_logout_on_a_is_refused_on_b(stack: Stack, http: httpx.AsyncClient) -> None:
    name = await _user(http, stack)
    pair = (await _login(http, stack.a, name, PASSWORD)).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert await _me(http, stack.b, headers) == 200
    body = {"refresh_token": pair["refresh_token"]}
    reply = await http.post(f"{stack.a}/api/v1/auth/logout", json=body, headers=headers)
    assert reply.status_code == 204, reply.text
    assert await _me(http, stack.b, headers) == 401
    assert (await http.post(f"{stack.b}/api/v1/auth/refresh", json=body)).status_code == 401


async def test_password_change_on_a_is_refused_on_b(stack: Stack, http: httpx.AsyncClient) -> None:
    name = await _user(http, stack)
    headers = await _bearer(http, stack.a, name, PASSWORD)
    assert await _me(http, stack.b, headers) == 200
    change = {"current_password": PASSWORD, "new_password": "another-password-2"}
    reply = await http.put(f"{stack.a}/api/v1/auth/me/password", json=change, headers=headers)
    assert reply.status_code == 204, reply.text
    assert await _me(http, stack.b, headers) == 401
    assert (await _login(http, stack.b, name, PASSWORD)).status_code == 401
    assert (await _login(http, stack.b, name, "another-password-2")).status_code == 200


async def test_disabled_user_on_a_is_refused_on_b(stack: Stack, http: httpx.AsyncClient) -> None:
    name = await _user(http, stack)
    headers = await _bearer(http, stack.b, name, PASSWORD)
    assert await _me(http, stack.b, headers) == 200
    admin = await _bearer(http, stack.a, *stack.admin)
    reply = await http.patch(
        f"{stack.a}/api/v1/users/{name}", json={"is_active": False}, headers=admin
    )
    assert reply.status_code == 200, reply.text
    assert await _me(http, stack.b, headers) == 401
    assert (await _login(http, stack.b, name, PASSWORD)).status_code == 401


async def test_revoked_api_token_on_a_is_refused_on_b(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    name = await _user(http, stack)
    login = await _bearer(http, stack.a, name, PASSWORD)
    made = await http.post(
        f"{stack.a}/api/v1/auth/tokens", json={"name": "ci", "role": "viewer"}, headers=login
    )
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    assert (await http.get(f"{stack.b}/api/v1/instances", headers=token)).status_code == 200
    reply = await http.delete(f"{stack.a}/api/v1/auth/tokens/{made.json()['id']}", headers=login)
    assert reply.status_code == 204
    assert (await http.get(f"{stack.b}/api/v1/instances", headers=token)).status_code == 401


async def test_login_failures_count_across_both(stack: Stack, http: httpx.AsyncClient) -> None:
    """The limit is per (username, address) in Redis: failures alternate between A and B, and
    the next attempt on either is a 429 (the right password too)."""
    name = await _user(http, stack)
    address = _address()
    for i in range(USER_IP_FAILURES):
        url = stack.both[i % 2]
        reply = await _login(http, url, name, "wrong-password-1", address)
        assert reply.status_code == 401, (i, reply.text)
    for url in stack.both:
        reply = await _login(http, url, name, PASSWORD, address)
        assert reply.status_code == 429, reply.text
        assert int(reply.headers["Retry-After"]) >= 1
    # Another address of the same user is not held to it.
    assert (await _login(http, stack.b, name, PASSWORD, _address())).status_code == 200


# --- the audit chain ----------------------------------------------------------------------------
async def test_the_audit_chain_written_through_both_verifies(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    admin = await _bearer(http, stack.a, *stack.admin)
    before = (await http.get(f"{stack.a}/api/v1/audit/verify", headers=admin)).json()
    assert before["ok"], before

    async def write(url: str, i: int) -> int:
        # Mutating requests that change nothing: each is one audit entry (a 404).
        reply = await http.delete(f"{url}/api/v1/auth/tokens/tok_{i:016x}", headers=admin)
        return reply.status_code

    statuses = await asyncio.gather(
        *(write(stack.both[i % 2], i) for i in range(40)),
        *(http.post(f"{url}/api/v1/auth/tokens", json={}, headers=admin) for url in stack.both),
    )
    assert set(statuses[:40]) == {404}
    # Each replica's audit routes wait for its own queue: ask B first, then A.
    for url in (stack.b, stack.a):
        verify = (await http.get(f"{url}/api/v1/audit/verify", headers=admin)).json()
        assert verify["ok"], verify
    assert verify["checked"] >= before["checked"] + 42
    entries = await http.get(
        f"{stack.a}/api/v1/audit", params={"method": "DELETE", "limit": 100}, headers=admin
    )
    paths = {e["path"] for e in entries.json()["items"]}
    assert {f"/api/v1/auth/tokens/tok_{i:016x}" for i in range(40)} <= paths


# --- events -------------------------------------------------------------------------------------
async def _event_upstreams(http: httpx.AsyncClient, url: str) -> float:
    reply = await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    for line in reply.text.splitlines():
        if line.startswith("lxd_api_event_upstreams "):
            return float(line.split()[1])
    return 0.0


async def test_a_subscriber_on_b_sees_an_instance_started_through_a(
    stack: Stack, http: httpx.AsyncClient, lxd_env: LXDEnv, names: list[str]
) -> None:
    name = await _user(http, stack, role="operator")
    login = (await _login(http, stack.a, name, PASSWORD)).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    ws_url = stack.b.replace("http://", "ws://")
    query = f"token={login['access_token']}&type=lifecycle&project=default"
    instance = f"rep-{uuid.uuid4().hex[:8]}"
    async with connect(
        f"{ws_url}/api/v1/operations/ws?{query}", ping_interval=None, open_timeout=30
    ) as ws:
        async with asyncio.timeout(10):
            while await _event_upstreams(http, stack.b) < 1:
                await asyncio.sleep(0.05)
        names.append(instance)
        body = {"name": instance, "source": {"type": "image", "alias": lxd_env.image_alias}}
        reply = await http.post(
            f"{stack.a}/api/v1/instances", params={"wait": "true"}, json=body, headers=headers
        )
        assert reply.status_code == 200, reply.text
        reply = await http.put(
            f"{stack.a}/api/v1/instances/{instance}/state",
            params={"wait": "true"},
            json={"action": "start"},
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        async with asyncio.timeout(20):
            while True:
                event: dict[str, Any] = json.loads(await ws.recv())
                meta = event.get("metadata") or {}
                if meta.get("action") == "instance-started" and str(
                    meta.get("source", "")
                ).endswith(f"/instances/{instance}"):
                    break
    assert event["type"] == "lifecycle"
    assert event["project"] == "default"


async def test_a_change_through_a_is_in_bs_read_model_once_its_event_arrived(
    stack: Stack, http: httpx.AsyncClient, lxd_env: LXDEnv, names: list[str]
) -> None:
    """B answers lists from its read model (`Age`); a PATCH made through A reaches it as
    LXD's event (B's own relay shows when that event came), not through anything shared."""
    name = await _user(http, stack, role="operator")
    login = (await _login(http, stack.a, name, PASSWORD)).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    instance = f"rep-{uuid.uuid4().hex[:8]}"
    names.append(instance)
    body = {"name": instance, "source": {"type": "image", "alias": lxd_env.image_alias}}
    reply = await http.post(
        f"{stack.a}/api/v1/instances", params={"wait": "true"}, json=body, headers=headers
    )
    assert reply.status_code == 200, reply.text

    async def b_list() -> tuple[dict[str, Any], httpx.Response]:
        got = await http.get(f"{stack.b}/api/v1/instances", params={"limit": 1000}, headers=headers)
        assert got.status_code == 200, got.text
        return {item["name"]: item for item in got.json()["items"]}, got

    async with asyncio.timeout(20):  # B's model holds the new instance (its events came)
        while instance not in (await b_list())[0]:
            await asyncio.sleep(0.05)
    ws_url = stack.b.replace("http://", "ws://")
    query = f"token={login['access_token']}&type=lifecycle&project=default"
    async with connect(
        f"{ws_url}/api/v1/operations/ws?{query}", ping_interval=None, open_timeout=30
    ) as ws:
        await asyncio.sleep(0.5)  # B's relay is subscribed
        reply = await http.patch(
            f"{stack.a}/api/v1/instances/{instance}",
            json={"config": {"user.replica": "a"}},
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        async with asyncio.timeout(20):
            while True:
                meta = json.loads(await ws.recv()).get("metadata") or {}
                if meta.get("action") == "instance-updated" and str(
                    meta.get("source", "")
                ).endswith(f"/instances/{instance}"):
                    break
    # B's model has its own LXD connection: allow it the moment between the two streams.
    async with asyncio.timeout(2):
        while True:
            items, got = await b_list()
            if items[instance]["config"].get("user.replica") == "a":
                break
            await asyncio.sleep(0.01)
    assert "Age" in got.headers  # answered by B's read model, not by LXD


# --- Redis down ---------------------------------------------------------------------------------
async def test_redis_down_refuses_logins_and_serves_the_rest(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The real redis-server stopped mid-test: logins fail closed (503) on both replicas,
    tokens, refresh, reads and writes go on, `/health` says so; Redis back, logins are back."""
    name = await _user(http, stack)
    pair = (await _login(http, stack.a, name, PASSWORD)).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    pid = int(Path(stack.values["REPLICAS_REDIS_PID_FILE"]).read_text())
    os.kill(pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            while Path(f"/proc/{pid}").exists():
                await asyncio.sleep(0.05)
        for url in stack.both:
            reply = await _login(http, url, name, PASSWORD)
            assert reply.status_code == 503, reply.text
            assert reply.json()["code"] == "rate_limit_unavailable"
            assert reply.headers["Retry-After"]
            health = await http.get(f"{url}/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["lxd"]["status"] == "ok"
            assert health.json()["rate_limits"]["status"] == "unavailable"
            assert await _me(http, url, headers) == 200
            listed = await http.get(f"{url}/api/v1/instances", headers=headers)
            assert listed.status_code == 200
        rotated = await http.post(
            f"{stack.b}/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert rotated.status_code == 200, rotated.text
        made = await http.post(f"{stack.a}/api/v1/auth/tokens", json={"name": "x"}, headers=headers)
        assert made.status_code == 201
        gone = await http.delete(
            f"{stack.b}/api/v1/auth/tokens/{made.json()['id']}", headers=headers
        )
        assert gone.status_code == 204
    finally:
        _script(stack.env, "up", stack.mode)  # starts Redis again (the rest runs)
    for url in stack.both:
        assert (await _login(http, url, name, PASSWORD)).status_code == 200
        health = (await http.get(f"{url}/health")).json()
        assert health["status"] == "ok"
        assert health["rate_limits"] == {"status": "ok", "storage": "redis"}


# --- migrations ---------------------------------------------------------------------------------
async def test_replicas_starting_together_migrate_one_after_the_other(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """Two real replicas started at once on an empty database: both wait on the migration lock
    (seen in `pg_locks` while this test holds it), neither serves before it is free, then both
    serve one schema at head and one seeded admin. Local mode only: LXD plays no part in it."""
    if stack.mode != "local":
        pytest.skip("the migration lock is PostgreSQL's alone; checked once, in local mode")
    import asyncpg

    env = {
        **_stack_env(Path(stack.env["REPLICAS_LXD_ENV"]), "replicas-migrate"),
        "REPLICAS_MODE": "local",
    }
    database = env["REPLICAS_DB"]
    ports = env["REPLICA_PORTS"].split()
    server = f"postgresql://postgres@127.0.0.1:{PG_PORT}"
    _script(env, "down")
    admin = await asyncpg.connect(f"{server}/postgres")
    await admin.execute(f"CREATE DATABASE {database}")
    holder = await asyncpg.connect(f"{server}/{database}")
    up: asyncio.subprocess.Process | None = None
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        up = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "up",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND (classid::bigint << 32 | objid::bigint) = $1"
        )
        async with asyncio.timeout(60):
            while await holder.fetchval(waiting, MIGRATION_LOCK_KEY) < 2:
                assert up.returncode is None, (await up.communicate())[0].decode()
                await asyncio.sleep(0.1)
        for port in ports:
            with pytest.raises(httpx.TransportError):
                await http.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
        assert not await holder.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        output, _ = await asyncio.wait_for(up.communicate(), 120)
        assert up.returncode == 0, output.decode()
        heads = await holder.fetch("SELECT version_num FROM alembic_version")
        assert len(heads) == 1
        seeded = await holder.fetchval(
            "SELECT count(*) FROM users WHERE username = 'replicas-admin'"
        )
        assert seeded == 1
        password = _read_env(Path(env["REPLICAS_DIR"]) / "replicas.env")["REPLICAS_ADMIN_PASSWORD"]
        for port in ports:
            url = f"http://127.0.0.1:{port}"
            assert (await http.get(f"{url}/health")).status_code == 200
            assert (await _login(http, url, "replicas-admin", password)).status_code == 200
    finally:
        if up is not None and up.returncode is None:
            up.kill()
            await up.wait()
        await holder.close()
        _script(env, "down")  # stops both replicas and drops the database
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.close()


def test_the_script_left_nothing_of_the_migration_stack() -> None:
    """`down` removes its state: pids, the env file (the secrets may stay for the next run)."""
    state = REPO / ".sandbox" / "test-replicas-migrate"
    if state.exists():
        assert not list(state.glob("*.pid"))
        assert not (state / "replicas.env").exists()
