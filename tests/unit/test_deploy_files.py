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


def test_dockerfile_runs_as_non_root_and_migrates_first() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "/health/live" in dockerfile
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert entrypoint.index("\nalembic upgrade head") < entrypoint.index("\nexec python -m app")
