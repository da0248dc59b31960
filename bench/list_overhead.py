"""List overhead: `GET /api/v1/instances` against LXD's own `GET /1.0/instances?recursion=1`.

Runs against the developer sandbox (`.sandbox/lxd`, started with `scripts/lxd-sandbox.sh up` if
it is not running): creates N stopped containers (default 50), starts the app under uvicorn on
127.0.0.1 (local mode, unix socket; defaults otherwise: INFO logs to a file), and measures in
one run, with the same httpx client for both, the median latency at 1 client and at 16
concurrent clients, interleaving API and LXD rounds so that both see the same load.
Everything it created is deleted at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/list_overhead.py [--instances 50] [--requests 300]

Target (issue 4): API median at most 1.15x LXD's, at 1 and at 16 clients. The machine has two
cores shared by LXD, the app and this client: run it when the machine is otherwise idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
SANDBOX_DIR = REPO / ".sandbox" / "lxd"
ENV_FILE = REPO / ".sandbox" / "sandbox.env"
ADMIN = "bench-admin"
ADMIN_PASSWORD = secrets.token_urlsafe(18)


# --- the daemon and the app ------------------------------------------------------------------
def sandbox_env() -> dict[str, str]:
    """Start the developer sandbox if needed; return its env file's values."""
    status = subprocess.run(
        [str(REPO / "scripts" / "lxd-sandbox.sh"), "status"],
        capture_output=True,
        check=False,
        env={**os.environ, "SANDBOX_DIR": str(SANDBOX_DIR)},
    )
    if status.returncode != 0:
        print("starting the developer sandbox (.sandbox/lxd) ...", file=sys.stderr)
        subprocess.run(
            [str(REPO / "scripts" / "lxd-sandbox.sh"), "up"],
            check=True,
            capture_output=True,
            env={**os.environ, "SANDBOX_DIR": str(SANDBOX_DIR)},
        )
    values: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """`uvicorn app.main:app` on 127.0.0.1 in a child process, with a seeded admin."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "api.log"
        self.env = {
            **os.environ,
            "LXD_CONNECTION_MODE": "local",
            "LXD_SOCKET_PATH": env["LXD_SOCKET_PATH"],
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SEED_ADMIN_USERNAME": ADMIN,
            "SEED_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LOG_LEVEL": "INFO",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "python"),
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
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


def lxd_client(socket_path: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=socket_path),
        base_url="http://lxd",
        timeout=httpx.Timeout(300),
        **kwargs,
    )


async def lxd_op(raw: httpx.AsyncClient, reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    if body.get("type") != "async":
        raise RuntimeError(f"LXD refused: {body.get('error') or body}")
    done = await raw.get(f"{body['operation']}/wait", params={"timeout": 600})
    op: dict[str, Any] = done.json()["metadata"]
    if op["status"] != "Success":
        raise RuntimeError(f"LXD operation failed: {op.get('err')}")
    return op


@contextlib.asynccontextmanager
async def bench_instances(
    raw: httpx.AsyncClient, count: int, *, image: str, prefix: str
) -> AsyncIterator[list[str]]:
    """`count` stopped containers, deleted afterwards whatever happens."""
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    limit = asyncio.Semaphore(4)

    async def create(name: str) -> None:
        async with limit:
            body = {"name": name, "source": {"type": "image", "alias": image}}
            await lxd_op(raw, await raw.post("/1.0/instances", json=body))

    async def delete(name: str) -> None:
        async with limit:
            reply = await raw.delete(f"/1.0/instances/{name}")
            if reply.status_code == 202:
                await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 120})

    try:
        await asyncio.gather(*(create(n) for n in names))
        yield names
    finally:
        await asyncio.gather(*(delete(n) for n in names), return_exceptions=True)


# --- measuring ---------------------------------------------------------------------------------
async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    started = time.perf_counter()
    reply = await call()
    elapsed = time.perf_counter() - started
    if reply.status_code != 200:
        raise RuntimeError(f"{reply.request.url} answered {reply.status_code}: {reply.text[:200]}")
    return elapsed


async def rounds(
    direct: Callable[[], Awaitable[httpx.Response]],
    api: Callable[[], Awaitable[httpx.Response]],
    *,
    requests: int,
    concurrency: int,
) -> tuple[list[float], list[float]]:
    """Alternate short rounds of each (same load for both); each round: `concurrency` tasks."""
    times: dict[str, list[float]] = {"direct": [], "api": []}
    per_round = max(concurrency * 4, 20)
    done = 0
    while done < requests:
        for label, call in (("direct", direct), ("api", api)):

            async def worker(call: Callable[[], Awaitable[httpx.Response]] = call) -> list[float]:
                return [await timed(call) for _ in range(per_round // concurrency)]

            results = await asyncio.gather(*(worker() for _ in range(concurrency)))
            times[label].extend(t for part in results for t in part)
        done += per_round
    return times["direct"], times["api"]


def summary(direct: list[float], api: list[float]) -> dict[str, float]:
    d, a = statistics.median(direct), statistics.median(api)
    return {"lxd_ms": d * 1000, "api_ms": a * 1000, "ratio": a / d, "n": len(api)}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300, help="per side and concurrency")
    args = parser.parse_args()

    env = sandbox_env()
    socket_path = env["LXD_SOCKET_PATH"]
    image = env.get("SANDBOX_IMAGE_ALIAS", "busybox")
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
        server = ApiServer(env, Path(tmp))
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with lxd_client(socket_path, limits=limits) as raw:
            prefix = f"bl{uuid.uuid4().hex[:6]}"
            async with bench_instances(raw, args.instances, image=image, prefix=prefix):
                server.start()
                try:
                    headers = {"Authorization": f"Bearer {server.token()}"}
                    async with httpx.AsyncClient(
                        base_url=server.url, headers=headers, timeout=60, limits=limits
                    ) as http:
                        listed = (await http.get("/api/v1/instances")).json()
                        print(f"instances listed by the API: {listed['total']}")

                        async def direct() -> httpx.Response:
                            return await raw.get("/1.0/instances", params={"recursion": 1})

                        async def api() -> httpx.Response:
                            return await http.get("/api/v1/instances")

                        await rounds(direct, api, requests=40, concurrency=4)  # warm-up
                        results = {}
                        for clients in (1, 16):
                            d, a = await rounds(
                                direct, api, requests=args.requests, concurrency=clients
                            )
                            results[clients] = summary(d, a)
                finally:
                    server.stop()
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    ok = True
    for clients, figures in results.items():
        verdict = "ok" if figures["ratio"] <= 1.15 else "OVER TARGET"
        ok = ok and figures["ratio"] <= 1.15
        print(
            f"{clients:>2} client(s): LXD median {figures['lxd_ms']:.2f} ms, API median "
            f"{figures['api_ms']:.2f} ms, ratio {figures['ratio']:.3f} "
            f"(n={figures['n']:.0f} each; target <= 1.15: {verdict})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
