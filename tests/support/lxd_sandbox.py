"""Finding the real LXD daemon that integration tests run against.

In order: `LXD_TEST_SOCKET` (an LXD you run yourself; add `LXD_TEST_REMOTE_URL`,
`LXD_TEST_CLIENT_CERT`, `LXD_TEST_CLIENT_KEY`, `LXD_TEST_SERVER_CERT` for remote mode), else the
project's own sandbox (`scripts/lxd-sandbox.sh`, started here when `lxd` is installed and we
run as root), else nothing, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEST_SANDBOX_DIR = REPO / ".sandbox" / "test" / "lxd"
# Its HTTPS port; another checkout testing on the same machine sets LXD_TEST_SANDBOX_PORT.
TEST_SANDBOX_PORT = os.environ.get("LXD_TEST_SANDBOX_PORT", "18543")


@dataclass(frozen=True)
class LXDEnv:
    socket_path: str
    remote_url: str = ""
    client_cert: str = ""
    client_key: str = ""
    server_cert: str = ""
    image_alias: str = "busybox"
    bridge: str = ""
    lxd_dir: str = ""

    def settings_for(self, mode: str) -> dict[str, Any]:
        if mode == "local":
            return {"LXD_CONNECTION_MODE": "local", "LXD_SOCKET_PATH": self.socket_path}
        return {
            "LXD_CONNECTION_MODE": "remote",
            "LXD_REMOTE_URL": self.remote_url,
            "LXD_CLIENT_CERT_PATH": self.client_cert,
            "LXD_CLIENT_KEY_PATH": self.client_key,
            "LXD_TRUSTED_CA_PATH": self.server_cert,
        }


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def start_sandbox(sandbox_dir: Path, port: str, **extra_env: str) -> dict[str, str]:
    """Start (or reuse) a sandbox daemon and return what its `sandbox.env` says."""
    env = {**os.environ, "SANDBOX_DIR": str(sandbox_dir), "SANDBOX_PORT": port, **extra_env}
    result = subprocess.run(
        [str(REPO / "scripts" / "lxd-sandbox.sh"), "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"lxd-sandbox.sh up failed:\n{result.stdout}\n{result.stderr}")
    return _read_env_file(sandbox_dir.parent / "sandbox.env")


def stop_sandbox(sandbox_dir: Path, *args: str) -> None:
    env = {**os.environ, "SANDBOX_DIR": str(sandbox_dir)}
    subprocess.run(
        [str(REPO / "scripts" / "lxd-sandbox.sh"), "down", *args],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )


def env_from_sandbox(values: dict[str, str]) -> LXDEnv:
    return LXDEnv(
        socket_path=values["LXD_SOCKET_PATH"],
        remote_url=values.get("LXD_REMOTE_URL", ""),
        client_cert=values.get("LXD_CLIENT_CERT_PATH", ""),
        client_key=values.get("LXD_CLIENT_KEY_PATH", ""),
        server_cert=values.get("LXD_TRUSTED_CA_PATH", ""),
        image_alias=values.get("SANDBOX_IMAGE_ALIAS", "busybox"),
        bridge=values.get("SANDBOX_BRIDGE", ""),
        lxd_dir=values.get("SANDBOX_LXD_DIR", ""),
    )


def find_lxd() -> tuple[LXDEnv | None, str]:
    socket = os.environ.get("LXD_TEST_SOCKET")
    if socket:
        if not Path(socket).exists():
            return None, f"LXD_TEST_SOCKET={socket} does not exist"
        return LXDEnv(
            socket_path=socket,
            remote_url=os.environ.get("LXD_TEST_REMOTE_URL", ""),
            client_cert=os.environ.get("LXD_TEST_CLIENT_CERT", ""),
            client_key=os.environ.get("LXD_TEST_CLIENT_KEY", ""),
            server_cert=os.environ.get("LXD_TEST_SERVER_CERT", ""),
            image_alias=os.environ.get("LXD_TEST_IMAGE", "busybox"),
            bridge=os.environ.get("LXD_TEST_BRIDGE", ""),
        ), ""
    if shutil.which("lxd") is None:
        return (
            None,
            "`lxd` is not installed (apt-get install lxd lxd-client iptables busybox-static)",
        )
    if os.geteuid() != 0:
        return None, "the sandbox daemon needs root (or set LXD_TEST_SOCKET)"
    try:
        values = start_sandbox(TEST_SANDBOX_DIR, TEST_SANDBOX_PORT)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return None, f"could not start the LXD sandbox: {exc}"
    return env_from_sandbox(values), ""
