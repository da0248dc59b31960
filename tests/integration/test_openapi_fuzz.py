"""Property-based run over every route of `/openapi.json` against the real LXD: no input a client
can send may get a 5xx, and every error keeps the contract's JSON shape.

Schemathesis generates the requests from the OpenAPI schema (examples, boundary values, then
random ones) and sends them, as the admin, to a real `uvicorn app.main:app` process serving the
sandbox LXD. What is generated is made safe before it is sent, because it runs as admin against a
real daemon: nothing that existed before the run is changed or deleted, networks stay
address-less bridges, pools stay `dir` pools without a host source, no instance gets a device or
is started, and every remote URL points at a closed loopback port. Whatever the run created is
deleted afterwards (and checked gone).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.auth import TEST_JWT_SECRET
from tests.support.lxd_sandbox import REPO, LXDEnv

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # per operation and mode
ADMIN = ("fuzz-admin", "fuzz-password-123")
CLOSED_PORT_URL = "https://127.0.0.1:9"  # discard port, nothing listens: LXD fails fast
SAFE_NETWORK_CONFIG = {"ipv4.address": "none", "ipv6.address": "none"}
# LXD collections whose members the run may create; (list URL, names to read).
COLLECTIONS = {
    "instances": "/1.0/instances?all-projects=true&recursion=1",
    "volumes": "/1.0/storage-pools/{pool}/volumes/custom?all-projects=true&recursion=1",
    "networks": "/1.0/networks?recursion=1",
    "pools": "/1.0/storage-pools",
    "aliases": "/1.0/images/aliases?recursion=1",
    "images": "/1.0/images?all-projects=true&recursion=1",
    # Per project with profiles of its own (LXD 5.0 ignores all-projects here); before projects.
    "profiles": "/1.0/profiles?recursion=1&project={project}",
    "projects": "/1.0/projects",
}

_existing: set[str] = set()  # every LXD object name seen before the run: the fuzz keeps off


def _name(entry: Any) -> str:
    return entry["name"] if isinstance(entry, dict) else str(entry).rstrip("/").rsplit("/", 1)[-1]


def _inventory(lxd: httpx.Client) -> dict[str, set[tuple[str, str]]]:
    """(project, name) of everything that matters, per collection."""
    found: dict[str, set[tuple[str, str]]] = {}
    pools = [_name(p) for p in lxd.get(COLLECTIONS["pools"]).json()["metadata"]]
    profile_projects = _profile_projects(lxd)
    for kind, url in COLLECTIONS.items():
        urls = [url.format(pool=pool) for pool in pools] if "{pool}" in url else [url]
        if "{project}" in url:
            urls = [url.format(project=project) for project in profile_projects]
        items: set[tuple[str, str]] = set()
        for one in urls:
            for entry in lxd.get(one).json()["metadata"] or []:
                project = entry.get("project", "default") if isinstance(entry, dict) else "default"
                if kind == "profiles":
                    project = one.rsplit("project=", 1)[1]
                name = entry.get("fingerprint") if kind == "images" else _name(entry)
                if kind == "volumes":
                    name = f"{one.split('/')[3]}/{name}"
                if kind == "networks" and not entry.get("managed"):
                    continue
                items.add((project, name))
        found[kind] = items
    return found


def _profile_projects(lxd: httpx.Client) -> list[str]:
    """Projects with profiles of their own: the others list the default project's, which must
    not be taken for theirs (and deleted through them)."""
    projects = lxd.get("/1.0/projects", params={"recursion": 1}).json()["metadata"]
    return [
        p["name"]
        for p in projects
        if p["name"] == "default" or p["config"].get("features.profiles") == "true"
    ]


def _wait(lxd: httpx.Client, reply: httpx.Response) -> None:
    if reply.status_code == 202:
        lxd.get(f"{reply.json()['operation']}/wait", params={"timeout": 60})


def _remove_new(lxd: httpx.Client, before: dict[str, set[tuple[str, str]]]) -> None:
    """Delete what the run created, children before parents."""
    after = _inventory(lxd)
    for kind in COLLECTIONS:
        for project, name in sorted(after[kind] - before[kind]):
            params = {"project": project}
            if kind == "instances":
                _wait(
                    lxd,
                    lxd.put(
                        f"/1.0/instances/{name}/state",
                        params=params,
                        json={"action": "stop", "force": True},
                    ),
                )
                _wait(lxd, lxd.delete(f"/1.0/instances/{name}", params=params))
            elif kind == "volumes":
                pool, volume = name.split("/", 1)
                lxd.delete(f"/1.0/storage-pools/{pool}/volumes/custom/{volume}", params=params)
            elif kind == "networks":
                lxd.delete(f"/1.0/networks/{name}", params=params)
            elif kind == "pools":
                lxd.delete(f"/1.0/storage-pools/{name}")
            elif kind == "aliases":
                lxd.delete(f"/1.0/images/aliases/{name}", params=params)
            elif kind == "images":
                _wait(lxd, lxd.delete(f"/1.0/images/{name}", params=params))
            elif kind == "profiles":
                lxd.delete(f"/1.0/profiles/{name}", params=params)
            elif kind == "projects":
                lxd.delete(f"/1.0/projects/{name}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["local", "remote"])
def api_server(
    request: pytest.FixtureRequest, lxd_env: LXDEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real API process (uvicorn, fresh SQLite) on a loopback port, against the sandbox."""
    mode = str(request.param)
    if mode == "remote" and not lxd_env.remote_url:
        pytest.skip("the LXD under test has no HTTPS address")
    data: Path = tmp_path_factory.mktemp(f"fuzz-{mode}")
    port = _free_port()
    env = {
        **os.environ,
        **lxd_env.settings_for(mode),
        "DATABASE_URL": f"sqlite+aiosqlite:///{data}/users.db",
        "JWT_SECRET": TEST_JWT_SECRET,
        "SEED_ADMIN_USERNAME": ADMIN[0],
        "SEED_ADMIN_PASSWORD": ADMIN[1],
        "RATE_LIMIT_LOGIN": "10000/minute",
        "RATE_LIMIT_REFRESH": "10000/minute",
        "LOG_LEVEL": "WARNING",
    }
    log = (data / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (data / "server.log").read_text()
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def lxd_sync(lxd_env: LXDEnv) -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(uds=lxd_env.socket_path)
    with httpx.Client(transport=transport, base_url="http://lxd", timeout=120) as lxd:
        yield lxd


@pytest.fixture(scope="module")
def api_schema(api_server: str, lxd_sync: httpx.Client) -> Iterator[Any]:
    before = _inventory(lxd_sync)
    _existing.clear()
    _existing.update(name.rsplit("/", 1)[-1] for items in before.values() for _, name in items)
    _existing.update({"default", ADMIN[0]})
    login = httpx.post(
        f"{api_server}/api/v1/auth/login",
        json=dict(zip(("username", "password"), ADMIN, strict=True)),
    )
    assert login.status_code == 200, login.text
    schema = schemathesis.openapi.from_url(f"{api_server}/openapi.json")
    schema.config.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    schema.config.base_url = api_server
    try:
        yield schema
    finally:
        _remove_new(lxd_sync, before)
        after = _inventory(lxd_sync)
        left = {k: v - before[k] for k, v in after.items() if v - before[k]}
        assert not left, f"the fuzz run left these behind: {left}"
        lost = {k: v - after[k] for k, v in before.items() if v - after[k]}
        assert not lost, f"the fuzz run removed what was there before it: {lost}"


def _make_safe(case: Any) -> bool:
    """Turn a generated request into one that is safe to send as admin; False: do not send."""
    method, path = case.method.upper(), case.operation.path
    if method != "GET" and any(
        name.startswith(str(value))  # images are also found by a fingerprint prefix
        for value in (case.path_parameters or {}).values()
        for name in _existing
    ):
        return False  # never change or delete what was there before the run
    if path.endswith("/auth/me/password") or (path.startswith("/api/v1/users") and method != "GET"):
        return False  # keeps the run's own admin logged in; covered by the unit tests
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return True
    if path == "/api/v1/networks" and method == "POST":
        body["type"] = "bridge"
    if path.startswith("/api/v1/networks") and method in {"POST", "PUT", "PATCH"}:
        body["config"] = dict(SAFE_NETWORK_CONFIG)
    if path == "/api/v1/storage/pools" and method == "POST":
        body["driver"] = "dir"
        body["config"] = {}
    if path.startswith("/api/v1/storage/pools/{pool}") and method in {"PUT", "PATCH"}:
        body["config"] = {}
    if path.startswith(("/api/v1/instances", "/api/v1/profiles")) and method in {
        "POST",
        "PUT",
        "PATCH",
    }:
        body.pop("devices", None)
        if "start" in body or path == "/api/v1/instances":
            body["start"] = False
    source = body.get("source")
    if isinstance(source, dict):
        source.pop("remote", None)
        for key in ("server", "operation", "base-image"):
            if key in source:
                source[key] = CLOSED_PORT_URL
    return True


def _check(case: Any, cases: list[str]) -> None:
    if not _make_safe(case):
        return
    cases.append(case.method)
    response = case.call(timeout=120)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert {"detail", "code", "request_id"} <= set(body), body


def test_no_request_gets_a_5xx(api_schema: Any) -> None:
    """Each operation of the schema in turn; every failing operation is reported at the end."""
    cases: list[str] = []
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50, "the schema lost its routes"
    for operation in operations:

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            _check(case, cases)

        try:
            run()
        except AssertionError as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    print(f"fuzz: {len(operations)} operations, {len(cases)} requests sent")
    assert len(cases) > 5 * len(operations), "most generated requests were never sent"
    assert not failures, "\n\n".join(failures)
