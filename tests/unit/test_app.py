"""The app shell: health, request IDs, the error shape, JSON logs without secrets."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.api.deps import ProjectDep
from app.core.config import Settings
from app.main import create_app
from tests.support.lxd_replies import sync

SERVER_INFO = {
    "api_version": "1.0",
    "auth": "trusted",
    "environment": {"server_version": "5.0.2", "certificate": "-----BEGIN CERTIFICATE-----"},
}


def lxd_up(request: httpx.Request) -> httpx.Response:
    return sync(SERVER_INFO)


async def call(app: FastAPI, method: str, url: str, **kwargs: object) -> httpx.Response:
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.request(method, url, **kwargs)  # type: ignore[arg-type]


async def test_health_ok(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))
    reply = await call(app, "GET", "/health")
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "ok",
        "version": "1.0.0",
        "lxd": {"status": "ok", "mode": "local", "api_version": "1.0", "server_version": "5.0.2"},
    }


async def test_health_degraded_when_socket_missing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = create_app(make_settings(LXD_SOCKET_PATH=str(tmp_path / "gone.socket")))
    reply = await call(app, "GET", "/health")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "degraded"
    assert body["lxd"]["status"] == "unavailable"
    assert "unreachable" in body["lxd"]["reason"]
    live = await call(app, "GET", "/health/live")
    assert live.status_code == 200


async def test_health_recovers_without_restart(make_settings: Callable[..., Settings]) -> None:
    state = {"up": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not state["up"]:
            raise httpx.ConnectError("refused", request=request)
        return lxd_up(request)

    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(handler))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/health")).status_code == 503
            state["up"] = True
            assert (await http.get("/health")).status_code == 200


async def test_request_id_echoed_when_sane(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))
    reply = await call(app, "GET", "/health/live", headers={"X-Request-ID": "abc-123"})
    assert reply.headers["x-request-id"] == "abc-123"
    fresh = await call(app, "GET", "/health/live")
    assert len(fresh.headers["x-request-id"]) == 32


@pytest.mark.parametrize("bad", ["a b", "x" * 200, "<script>", "id\\n"])
async def test_insane_request_id_replaced(make_settings: Callable[..., Settings], bad: str) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))
    reply = await call(app, "GET", "/health/live", headers={"X-Request-ID": bad})
    assert reply.headers["x-request-id"] != bad
    assert reply.headers.get_list("x-request-id") == [reply.headers["x-request-id"]]


async def test_error_shape_for_unknown_route(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))
    reply = await call(app, "GET", "/nope", headers={"X-Request-ID": "rid-1"})
    assert reply.status_code == 404
    assert reply.json() == {"detail": "Not Found", "code": "not_found", "request_id": "rid-1"}
    wrong_method = await call(app, "DELETE", "/health/live")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


async def test_unhandled_error_is_generic_500(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/lxd")

    reply = await call(app, "GET", "/boom", headers={"X-Request-ID": "rid-500"})
    assert reply.status_code == 500
    assert reply.json() == {
        "detail": "Internal server error",
        "code": "internal_error",
        "request_id": "rid-500",
    }
    assert reply.headers["x-request-id"] == "rid-500"
    assert "secret internals" not in reply.text
    logged = capsys.readouterr().out
    assert "secret internals" in logged  # the trace goes to the log, only there


async def test_validation_error_shape_hides_input(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))

    @app.get("/needs-int")
    async def needs_int(n: int) -> int:
        return n

    reply = await call(app, "GET", "/needs-int?n=hunter2")
    assert reply.status_code == 422
    body = reply.json()
    assert body["code"] == "validation_error"
    assert isinstance(body["detail"], list)
    assert "hunter2" not in reply.text


def log_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_request_log_line_redacts_token(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))
    await call(app, "GET", "/health/live?token=eyJsecret.value&x=1", headers={"X-Request-ID": "r9"})
    output = capsys.readouterr().out
    assert "eyJsecret" not in output
    lines = [line for line in log_lines(output) if line.get("event") == "http.request"]
    assert lines == [
        {
            **lines[0],
            "method": "GET",
            "path": "/health/live",
            "query": "token=[REDACTED]&x=1",
            "status": 200,
            "request_id": "r9",
        }
    ]
    assert isinstance(lines[0]["duration_ms"], float)


async def test_uvicorn_lines_are_redacted(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    create_app(make_settings(), lxd_transport=httpx.MockTransport(lxd_up))
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/api/v1/operations/ws?token=abc.def"
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s" %d', "127.0.0.1", "GET", "/x?token=abc.def", 200
    )
    output = capsys.readouterr().out
    assert "abc.def" not in output
    assert "token=[REDACTED]" in output


def test_remote_mode_needs_cert_files(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(Exception, match="LXD_CLIENT_CERT_PATH"):
        make_settings(LXD_CONNECTION_MODE="remote", LXD_REMOTE_URL="https://127.0.0.1:1")


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("", "not set"),
        ("change-me-to-a-long-random-secret", "public placeholder"),
        ("s3cr3t", "shorter than 32 bytes"),
        ("x" * 31, "shorter than 32 bytes"),
    ],
)
def test_a_weak_secret_stops_the_start_in_every_mode(
    make_settings: Callable[..., Settings], env: str, secret: str, reason: str
) -> None:
    settings = make_settings(APP_ENV=env, JWT_SECRET=secret)
    with pytest.raises(SystemExit, match=f"JWT_SECRET is .*{reason}") as stopped:
        create_app(settings)
    assert "token_urlsafe" in str(stopped.value)  # the message says how to make one
    assert secret not in str(stopped.value) or not secret


def test_a_32_byte_secret_starts(make_settings: Callable[..., Settings]) -> None:
    assert create_app(make_settings(JWT_SECRET="x" * 32)).state.settings.jwt_secret_problem is None


def test_invalid_configuration_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import get_settings

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "change-me-to-a-long-random-secret")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit, match="JWT_SECRET"):
            create_app()
    finally:
        get_settings.cache_clear()


def test_importing_the_app_module_needs_no_secret(tmp_path: Path) -> None:
    """`app.main:app` is built on first use (uvicorn), not at import."""
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])

    def run(code: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**env, **extra},
            cwd=tmp_path,
            check=False,
        )

    imported = run("import app.main")
    assert imported.returncode == 0, imported.stderr
    served = run("import app.main; app.main.app", JWT_SECRET="change-me-to-a-long-random-secret")
    assert served.returncode != 0
    assert "JWT_SECRET is the public placeholder" in served.stderr


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/instances/a%2Fb",
        "/api/v1/instances/a%2fb/state",
        "/api/v1/storage/pools/a%2Fvolumes",
        "/api/v1/instances/%2e%2e",
        "/api/v1/instances/..%2Fcertificates",
        "/api/v1/instances/a%5Cb",
        "/api/v1/instances/a%00",
    ],
)
async def test_encoded_separators_are_422(
    make_settings: Callable[..., Settings], path: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return lxd_up(request)

    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(handler))
    reply = await call(app, "GET", path, headers={"X-Request-ID": "rid-p"})
    assert reply.status_code == 422
    assert reply.json()["code"] == "invalid_name"
    assert reply.json()["request_id"] == "rid-p"
    assert sent == []


async def test_default_project_comes_from_the_apps_settings(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(
        make_settings(DEFAULT_PROJECT="staging"), lxd_transport=httpx.MockTransport(lxd_up)
    )

    @app.get("/which-project")
    async def which(project: ProjectDep) -> str:
        return project

    assert (await call(app, "GET", "/which-project")).json() == "staging"
    assert (await call(app, "GET", "/which-project?project=p1")).json() == "p1"
    assert (await call(app, "GET", "/which-project?project=a%20b")).status_code == 422
