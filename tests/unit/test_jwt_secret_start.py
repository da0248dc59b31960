"""No server runs with a public JWT secret: `make run`/`make dev` make one of their own, the
container refuses to start without one (and without a first admin)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


def _clean_env(**extra: str) -> dict[str, str]:
    drop = ("JWT_SECRET", "SEED_ADMIN_USERNAME", "SEED_ADMIN_PASSWORD", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return {**env, **extra}


def test_secret_file_is_made_once_private_and_long(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "jwt-secret"
    first = subprocess.run(
        [str(REPO / "scripts" / "jwt-secret.sh"), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = first.stdout.strip()
    assert len(secret.encode()) >= 48
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "generated" in first.stderr
    assert secret not in first.stderr
    again = subprocess.run(
        [str(REPO / "scripts" / "jwt-secret.sh"), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout.strip() == secret  # kept between runs: tokens survive a restart
    assert again.stderr == ""


def _make_dry_run(target: str) -> str:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target, "STAMP=Makefile"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_run_and_dev_never_start_without_a_secret_of_their_own() -> None:
    run = _make_dry_run("run")
    assert "scripts/jwt-secret.sh .sandbox/jwt-secret" in run
    assert run.index("jwt-secret.sh") < run.index("-m app")
    dev = _make_dry_run("dev")
    assert "scripts/jwt-secret.sh .sandbox/jwt-secret" in dev
    assert "export APP_HOST=127.0.0.1" in dev
    assert dev.index("jwt-secret.sh") < dev.index("-m app")


def test_env_example_ships_no_secret() -> None:
    lines = (REPO / ".env.example").read_text().splitlines()
    assert "JWT_SECRET=" in lines


def test_the_gitignore_covers_the_generated_secret() -> None:
    done = subprocess.run(
        ["git", "check-ignore", "-q", ".sandbox/jwt-secret"], cwd=REPO, check=False
    )
    assert done.returncode == 0


def _entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_clean_env(**env),
        timeout=120,
        check=False,
    )


def test_container_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    done = _entrypoint(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    assert done.returncode == 78
    assert "JWT_SECRET is not set" in done.stderr
    assert not db.exists()  # refused before anything ran


def test_container_refuses_an_empty_store_without_a_first_admin(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    done = _entrypoint(
        tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{db}", JWT_SECRET="k" * 48, LOG_LEVEL="ERROR"
    )
    assert done.returncode == 78, done.stderr
    assert "SEED_ADMIN_USERNAME and SEED_ADMIN_PASSWORD" in done.stderr
    assert "k" * 48 not in done.stdout + done.stderr
