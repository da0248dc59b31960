"""Replicas: list throughput (`GET /api/v1/instances`) at 16 clients through one replica and
through two (round robin), on the same LXD, in one run.

Starts the stack of `scripts/replicas.sh` (PostgreSQL, Redis, two replicas in local mode, its
own state under `.sandbox/bench-replicas` and free loopback ports) against the tests' LXD
sandbox (`.sandbox/test/lxd`, started if it does not run), creates N stopped containers (default
20), and alternates rounds of the two sides with the same 16 concurrent clients (one httpx
client in this process), so both see the same load. Everything it created is deleted at the end
and the stack is stopped, also on failure or Ctrl-C.

    .venv/bin/python bench/replicas.py [--instances 20] [--seconds 4] [--rounds 3] [--read-model]

The replicas run with `READ_MODEL=false` (every list asks LXD) unless `--read-model` is given.

What limits the ratio: every list is one `GET /1.0/instances?recursion=1` to the same LXD
daemon, which builds each instance's state and config from its database on every call; that
work does not grow with the replicas, so the second replica only helps as far as the API's own
share (auth, parsing, sorting, rendering, one user-store query) was the bottleneck. On the
2-core development machine LXD, both replicas, PostgreSQL and this load generator share the
same two cores, so expect far less than 2x; on a host where LXD has cores of its own, the
second replica buys more until LXD is saturated. (With `--read-model`, lists come from each
replica's memory and LXD is out of this path: then the replicas' CPU is the limit, and the
ratio approaches their count only where they have cores of their own.)

Prints a table, then, as its last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, lxd_client, lxd_op, wait_if_async

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "replicas.sh"
STATE = REPO / ".sandbox" / "bench-replicas"
LXD_ENV = REPO / ".sandbox" / "test" / "sandbox.env"
CLIENTS = 16


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {k: v.strip("'") for k, _, v in pairs if k and not k.startswith("#")}


@contextlib.contextmanager
def replicas(*, read_model: bool) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "REPLICAS_DIR": str(STATE),
        "REPLICA_PORTS": f"{free_port()} {free_port()}",
        "REDIS_PORT": str(free_port()),
        "REPLICAS_DB": "lxd_api_bench_replicas",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # Off by default: every list goes to LXD, the shared part this measures.
        "READ_MODEL": "true" if read_model else "false",
    }

    def script(*args: str) -> None:
        done = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"replicas.sh {' '.join(args)}:\n{done.stdout}{done.stderr}")

    script("down")
    try:
        script("up", "local")
        yield read_env(STATE / "replicas.env")
    finally:
        script("down")


@contextlib.asynccontextmanager
async def stopped_instances(
    raw: httpx.AsyncClient, count: int, image: str
) -> AsyncIterator[list[str]]:
    prefix = f"br{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    limit = asyncio.Semaphore(4)

    async def create(name: str) -> None:
        async with limit:
            body = {"name": name, "source": {"type": "image", "alias": image}}
            await lxd_op(raw, await raw.post("/1.0/instances", json=body))

    async def delete(name: str) -> None:
        async with limit:
            await wait_if_async(raw, await raw.delete(f"/1.0/instances/{name}"), 120)

    try:
        await asyncio.gather(*(create(n) for n in names))
        yield names
    finally:
        await asyncio.gather(*(delete(n) for n in names), return_exceptions=True)


async def throughput(
    http: httpx.AsyncClient, pick: Callable[[], str], seconds: float
) -> tuple[float, list[float]]:
    """Requests per second of CLIENTS workers for `seconds`, and every latency."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            reply = await http.get(f"{pick()}/api/v1/instances")
            if reply.status_code != 200:
                raise RuntimeError(f"{reply.request.url}: {reply.status_code} {reply.text[:200]}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0, help="per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--read-model", action="store_true", help="serve the lists from the read model"
    )
    args = parser.parse_args()

    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    with replicas(read_model=args.read_model) as stack:
        lxd = read_env(LXD_ENV)
        a, b = stack["REPLICA_A_URL"], stack["REPLICA_B_URL"]
        limits = httpx.Limits(max_connections=2 * CLIENTS, max_keepalive_connections=2 * CLIENTS)
        async with contextlib.AsyncExitStack() as exits:
            raw = await exits.enter_async_context(lxd_client(lxd["LXD_SOCKET_PATH"]))
            await exits.enter_async_context(
                stopped_instances(raw, args.instances, lxd.get("SANDBOX_IMAGE_ALIAS", "busybox"))
            )
            http = await exits.enter_async_context(httpx.AsyncClient(timeout=60, limits=limits))
            login = {
                "username": stack["REPLICAS_ADMIN_USERNAME"],
                "password": stack["REPLICAS_ADMIN_PASSWORD"],
            }
            reply = await http.post(f"{a}/api/v1/auth/login", json=login)
            reply.raise_for_status()
            http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
            listed = (await http.get(f"{b}/api/v1/instances")).json()["total"]
            print(f"instances listed (through B, logged in on A): {listed}")
            both = itertools.cycle((a, b))
            sides: dict[str, Callable[[], str]] = {"one": lambda: a, "two": lambda: next(both)}
            for pick in sides.values():  # warm-up: connections, caches
                await throughput(http, pick, 1.0)
            rates: dict[str, list[float]] = {side: [] for side in sides}
            latencies: dict[str, list[float]] = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side, pick in sides.items():
                    rate, times = await throughput(http, pick, args.seconds)
                    rates[side].append(rate)
                    latencies[side].extend(times)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")

    figures = {
        side: {
            "rps": round(statistics.median(rates[side]), 1),
            "rounds_rps": [round(r, 1) for r in rates[side]],
            "median_ms": round(statistics.median(latencies[side]) * 1000, 2),
            "p95_ms": round(statistics.quantiles(latencies[side], n=20)[-1] * 1000, 2),
            "requests": len(latencies[side]),
        }
        for side in sides
    }
    ratio = figures["two"]["rps"] / figures["one"]["rps"]
    print(f"\n{'side':<26}{'req/s (median)':>16}{'median ms':>12}{'p95 ms':>10}{'requests':>10}")
    for side, label in (("one", "one replica"), ("two", "two replicas, round robin")):
        f = figures[side]
        print(
            f"{label:<26}{f['rps']:>16.1f}{f['median_ms']:>12.2f}{f['p95_ms']:>10.2f}"
            f"{f['requests']:>10}"
        )
    print(f"ratio two/one: {ratio:.2f}x ({CLIENTS} clients, {args.instances} instances)")
    result = {
        "bench": "replicas",
        "clients": CLIENTS,
        "instances": args.instances,
        "seconds_per_round": args.seconds,
        "read_model": args.read_model,
        "one_replica": figures["one"],
        "two_replicas": figures["two"],
        "ratio": round(ratio, 3),
        "cores": os.cpu_count(),
        "host": socket.gethostname(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
