"""Exec throughput: 200 MB of stdout through our WebSocket against LXD's own websocket.

Runs against the developer sandbox (`.sandbox/lxd`, started with `scripts/lxd-sandbox.sh up` if
it is not running): creates one busybox container, starts the app under uvicorn on 127.0.0.1
(local mode, unix socket, a child process as in production), and runs
`head -c 200000000 /dev/zero` in rounds that alternate between LXD's websocket read directly
and our `WS /api/v1/instances/{name}/exec/ws`, in both exec modes:

* `interactive: false`: LXD's stdout socket (binary) vs our `{"type": "stdout", "data":
  "<base64>"}` text frames, decoded by this client as any client must;
* `interactive: true`: the PTY's binary frames both ways.

The container is deleted at the end, also on failure or Ctrl-C. Our client asks for no
compression (`permessage-deflate` would spend the relay's CPU on 200 MB of zeros).

    .venv/bin/python bench/exec_throughput.py [--bytes 200000000] [--rounds 3]

Target (issue 5): through us at least 0.85x of direct. LXD itself burns about one core for this
on a 2-core machine: run it when the machine is otherwise idle (`uptime`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect, unix_connect

REPO = Path(__file__).resolve().parent.parent
SANDBOX_DIR = REPO / ".sandbox" / "lxd"
ENV_FILE = REPO / ".sandbox" / "sandbox.env"
ADMIN = "bench-admin"
ADMIN_PASSWORD = secrets.token_urlsafe(18)


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


class ApiServer:
    """`uvicorn app.main:app` on 127.0.0.1 in a child process, with a seeded admin."""

    def __init__(self, socket_path: str, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "api.log"
        self.env = {
            **os.environ,
            "LXD_CONNECTION_MODE": "local",
            "LXD_SOCKET_PATH": socket_path,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SEED_ADMIN_USERNAME": ADMIN,
            "SEED_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LOG_LEVEL": "INFO",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(REPO / ".venv" / "bin" / "python"), "-m", "uvicorn", "app.main:app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
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


async def lxd_op(raw: httpx.AsyncClient, reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    if body.get("type") != "async":
        raise RuntimeError(f"LXD refused: {body.get('error') or body}")
    done = await raw.get(f"{body['operation']}/wait", params={"timeout": 600})
    op: dict[str, Any] = done.json()["metadata"]
    if op["status"] != "Success":
        raise RuntimeError(f"LXD operation failed: {op.get('err')}")
    return op


# --- one round each way ------------------------------------------------------------------------
async def direct(
    raw: httpx.AsyncClient, socket_path: str, name: str, size: int, interactive: bool
) -> tuple[int, float]:
    """Bytes read and seconds, reading LXD's own websocket (control first, as lxc does)."""
    body = {
        "command": ["head", "-c", str(size), "/dev/zero"],
        "interactive": interactive,
        "wait-for-websocket": True,
    }
    started = time.perf_counter()
    reply = (await raw.post(f"/1.0/instances/{name}/exec", json=body)).json()
    op, fds = reply["operation"], reply["metadata"]["metadata"]["fds"]
    names = ["control", "0"] if interactive else ["control", "0", "1", "2"]
    socks = {
        fd: await unix_connect(
            socket_path,
            f"ws://lxd{op}/websocket?secret={fds[fd]}",
            ping_interval=None,
            max_size=None,
            compression=None,
        )
        for fd in names
    }
    if not interactive:
        await socks["0"].send("")

    async def drain(fd: str) -> int:
        count = 0
        async for message in socks[fd]:
            if isinstance(message, str):
                break
            count += len(message)
        return count

    counts = await asyncio.gather(*(drain(fd) for fd in (["0"] if interactive else ["1", "2"])))
    await socks["0"].close()
    await raw.get(f"{op}/wait", params={"timeout": 60})
    elapsed = time.perf_counter() - started
    for sock in socks.values():
        await sock.close()
    return counts[0], elapsed


async def proxied(
    base: str, token: str, name: str, size: int, interactive: bool
) -> tuple[int, float]:
    """Bytes read and seconds through `WS /api/v1/instances/{name}/exec/ws`."""
    started = time.perf_counter()
    url = f"{base}/api/v1/instances/{name}/exec/ws?token={token}"
    count, code = 0, None
    async with connect(url, ping_interval=None, max_size=None, compression=None) as ws:
        start = {"command": ["head", "-c", str(size), "/dev/zero"], "interactive": interactive}
        await ws.send(json.dumps(start))
        if not interactive:
            await ws.send(json.dumps({"type": "eof"}))
        async for message in ws:
            if isinstance(message, bytes):
                count += len(message)
                continue
            frame = json.loads(message)
            if frame["type"] == "stdout":
                count += len(base64.b64decode(frame["data"]))
            elif frame["type"] == "exit":
                code = frame["return_code"]
    if code != 0:
        raise RuntimeError(f"exec through the API ended with {code}")
    return count, time.perf_counter() - started


def check(got: int, wanted: int, interactive: bool) -> None:
    """Every byte, except that LXD 5.0 itself may drop the last KiB of a PTY whose command
    exits at once (seen reading LXD's websocket directly): then the rate uses what came."""
    if got != wanted and not (interactive and wanted - 65536 <= got < wanted):
        raise RuntimeError(f"{got} bytes arrived, {wanted} were sent")
    if got != wanted:
        print(f"  (PTY tail lost by LXD: {wanted - got} bytes)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    env = sandbox_env()
    socket_path = env["LXD_SOCKET_PATH"]
    name = f"bench-exec-{uuid.uuid4().hex[:6]}"
    print(f"load average before: {loadavg()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
        server = ApiServer(socket_path, Path(tmp))
        raw = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=socket_path),
            base_url="http://lxd",
            timeout=httpx.Timeout(300),
        )
        try:
            body = {
                "name": name,
                "source": {"type": "image", "alias": env.get("SANDBOX_IMAGE_ALIAS", "busybox")},
            }
            await lxd_op(raw, await raw.post("/1.0/instances", json=body))
            await lxd_op(
                raw, await raw.put(f"/1.0/instances/{name}/state", json={"action": "start"})
            )
            server.start()
            token = server.token()
            base = f"ws://127.0.0.1:{server.port}"
            for interactive in (False, True):
                mode = "interactive (PTY, binary)" if interactive else "non-interactive (pipe)"
                # Warm-up: one small run each way.
                await direct(raw, socket_path, name, 1_000_000, interactive)
                await proxied(base, token, name, 1_000_000, interactive)
                rates: dict[str, list[float]] = {"direct": [], "api": []}
                relay_cpu: list[float] = []
                for _ in range(args.rounds):
                    n, seconds = await direct(raw, socket_path, name, args.bytes, interactive)
                    check(n, args.bytes, interactive)
                    rates["direct"].append(n / seconds / 1e6)
                    before = cpu_seconds(server.pid)
                    n, seconds = await proxied(base, token, name, args.bytes, interactive)
                    relay_cpu.append(cpu_seconds(server.pid) - before)
                    check(n, args.bytes, interactive)
                    rates["api"].append(n / seconds / 1e6)
                d, a = statistics.median(rates["direct"]), statistics.median(rates["api"])
                print(f"\n{mode}: {args.bytes / 1e6:.0f} MB x {args.rounds} rounds")
                print(f"  LXD direct : {d:7.1f} MB/s  {[round(r, 1) for r in rates['direct']]}")
                print(f"  through API: {a:7.1f} MB/s  {[round(r, 1) for r in rates['api']]}")
                print(f"  ratio      : {a / d:.2f}x (target >= 0.85x)")
                cpu = statistics.median(relay_cpu)
                print(f"  relay CPU  : {cpu:.2f} s per run ({cpu * 1e9 / args.bytes:.1f} ns/byte)")
        finally:
            server.stop()
            reply = await raw.put(
                f"/1.0/instances/{name}/state", json={"action": "stop", "force": True}
            )
            if reply.status_code == 202:
                await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 60})
            reply = await raw.delete(f"/1.0/instances/{name}")
            if reply.status_code == 202:
                await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 60})
            await raw.aclose()
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=200_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
