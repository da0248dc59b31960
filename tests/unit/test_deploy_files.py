"""Deployment files stay valid: Dockerfile (hadolint), docker-compose.yml (compose schema).

No Docker engine runs here, so the files are checked, not built.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make install` installs it (requirements-dev.txt)")
    return path


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(REPO / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_wires_what_the_readme_promises() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    assert "env_file: .env" in compose
    assert "${LXD_SOCKET_PATH" in compose
    assert "LXD_TLS_DIR" in compose
    assert "/app/data" in compose
    assert "restart: unless-stopped" in compose
    assert "/health/live" in compose


def test_compose_scale_profile_is_opt_in_and_shares_the_state() -> None:
    """`--profile scale`: PostgreSQL, Redis, two replicas on both, nginx in front; none of them
    starts without the profile, and only the proxy publishes a port."""
    import yaml

    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    scale = {name for name, service in services.items() if "scale" in service.get("profiles", [])}
    assert scale == {"postgres", "redis", "api-a", "api-b", "proxy"}
    assert "profiles" not in services["api"]  # `make up` is unchanged
    for name in ("api-a", "api-b"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["RATE_LIMIT_STORAGE_URI"] == "async+redis://redis:6379"
        assert services[name]["env_file"] == ".env"  # one JWT_SECRET for both
        assert "ports" not in services[name]
    assert [name for name in scale if "ports" in services[name]] == ["proxy"]
    assert "--save" in services["redis"]["command"]
    (mount,) = services["proxy"]["volumes"]
    assert mount.startswith("./docker/nginx-scale.conf:")
    assert services["proxy"]["image"].startswith("nginx:")


def test_the_scale_proxy_passes_websockets_without_sticky_sessions() -> None:
    conf = (REPO / "docker" / "nginx-scale.conf").read_text()
    directives = [line.split("#")[0].strip() for line in conf.splitlines()]
    assert "server api-a:8000 max_fails=3 fail_timeout=10s;" in directives
    assert "server api-b:8000 max_fails=3 fail_timeout=10s;" in directives
    assert "proxy_http_version 1.1;" in directives
    assert "proxy_set_header Upgrade $http_upgrade;" in directives
    assert "proxy_set_header Connection $connection_upgrade;" in directives
    # Replaced, never appended: the replicas trust every hop.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in directives
    assert not any(d.startswith(("ip_hash", "hash ", "sticky")) for d in directives)
    assert conf.count("{") == conf.count("}")


def test_dockerfile_runs_as_non_root_and_migrates_first() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "/health/live" in dockerfile
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert entrypoint.index("\nalembic upgrade head") < entrypoint.index("\nexec python -m app")
