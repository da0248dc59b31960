"""Helpers shared by the benchmark scripts in bench/ (not a benchmark: `make bench` skips it).

The scripts run as `.venv/bin/python bench/<name>.py`, so this folder is on `sys.path` and they
import this module as `_common`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
SANDBOX_DIR = REPO / ".sandbox" / "lxd"
ENV_FILE = REPO / ".sandbox" / "sandbox.env"
ADMIN = "bench-admin"
ADMIN_PASSWORD = secrets.token_urlsafe(18)


# --- the daemon ---------------------------------------------------------------------------------
def sandbox_env() -> dict[str, str]:
    """Start the developer sandbox if needed; return its env file's values."""
    env = {**os.environ, "SANDBOX_DIR": str(SANDBOX_DIR)}
    script = str(REPO / "scripts" / "lxd-sandbox.sh")
    if subprocess.run([script, "status"], capture_output=True, check=False, env=env).returncode:
        print("starting the developer sandbox (.sandbox/lxd) ...", file=sys.stderr)
        subprocess.run([script, "up"], check=True, capture_output=True, env=env)
    values: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def lxd_client(socket_path: str, **kwargs: Any) -> httpx.AsyncClient:
    """A raw httpx client on LXD's unix socket."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=socket_path),
        base_url="http://lxd",
        timeout=httpx.Timeout(300),
        **kwargs,
    )


async def lxd_op(raw: httpx.AsyncClient, reply: httpx.Response) -> dict[str, Any]:
    """Wait for the operation LXD answered with; raise unless it succeeded."""
    body = reply.json()
    if body.get("type") != "async":
        raise RuntimeError(f"LXD refused: {body.get('error') or body}")
    done = await raw.get(f"{body['operation']}/wait", params={"timeout": 600})
    op: dict[str, Any] = done.json()["metadata"]
    if op["status"] != "Success":
        raise RuntimeError(f"LXD operation failed: {op.get('err')}")
    return op


async def wait_if_async(raw: httpx.AsyncClient, reply: httpx.Response, timeout: int) -> None:
    """If LXD answered 202, wait for the operation (its outcome is not checked: cleanup)."""
    if reply.status_code == 202:
        await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": timeout})


# --- the app ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """`uvicorn app.main:app` on 127.0.0.1 in a child process, with a temporary SQLite store
    and a seeded admin. Its output goes to `workdir/api.log`, or to ours with `show_log`.
    `app="_relay:app"` serves the bare relay of `bench/_relay.py` instead (the floor)."""

    def __init__(
        self,
        socket_path: str,
        workdir: Path,
        *,
        extra_env: dict[str, str] | None = None,
        show_log: bool = False,
        app: str = "app.main:app",
    ) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{app.split(':')[0].strip('_').replace('.', '-')}.log"
        self.show_log = show_log
        self.env = {
            **os.environ,
            "LXD_CONNECTION_MODE": "local",
            "LXD_SOCKET_PATH": socket_path,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SEED_ADMIN_USERNAME": ADMIN,
            "SEED_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LOG_LEVEL": "INFO",
            "RELAY_LXD_SOCKET": socket_path,
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait (up to 60 s) until `/health/live` answers 200."""
        command = [str(REPO / ".venv" / "bin" / "python"), "-m", "uvicorn", self.app]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.app.startswith("_"):  # a helper module of bench/ (`python -m` puts REPO first)
            command += ["--app-dir", str(REPO / "bench")]
        with contextlib.ExitStack() as stack:
            log = None if self.show_log else stack.enter_context(self.log_path.open("wb"))
            self.process = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app did not start: see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("the app did not answer /health/live within 60 s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def token(self) -> str:
        reply = httpx.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": ADMIN, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the machine --------------------------------------------------------------------------------
def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
