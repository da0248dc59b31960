"""List overhead: `GET /api/v1/instances` against LXD's own `GET /1.0/instances?recursion=1`.

Runs against the developer sandbox (`.sandbox/lxd`, started with `scripts/lxd-sandbox.sh up` if
it is not running): creates N stopped containers (default 50), starts the app under uvicorn on
127.0.0.1 (local mode, unix socket; defaults otherwise: INFO logs to a file), and measures in
one run, with the same httpx client for all, the median latency at 1 client and at 16
concurrent clients, interleaving rounds so that all see the same load. A third side is the
floor: the same LXD call through a bare ASGI relay under the same uvicorn (`bench/_relay.py`:
no FastAPI, no auth, no parsing), which tells what a second HTTP hop through Python costs on
this machine and so how much of the ratio is the API's own.
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
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ApiServer, lxd_client, lxd_op, sandbox_env, wait_if_async


# --- the instances -----------------------------------------------------------------------------
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
            await wait_if_async(raw, await raw.delete(f"/1.0/instances/{name}"), 120)

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
    calls: Mapping[str, Callable[[], Awaitable[httpx.Response]]], *, requests: int, concurrency: int
) -> dict[str, list[float]]:
    """Alternate short rounds of each side (same load for all); each round: `concurrency`
    tasks."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    per_round = max(concurrency * 4, 20)
    done = 0
    while done < requests:
        for label, call in calls.items():

            async def worker(call: Callable[[], Awaitable[httpx.Response]] = call) -> list[float]:
                return [await timed(call) for _ in range(per_round // concurrency)]

            results = await asyncio.gather(*(worker() for _ in range(concurrency)))
            times[label].extend(t for part in results for t in part)
        done += per_round
    return times


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
        server = ApiServer(socket_path, Path(tmp))
        relay = ApiServer(socket_path, Path(tmp), app="_relay:app")
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with contextlib.AsyncExitStack() as stack:
            raw = await stack.enter_async_context(lxd_client(socket_path, limits=limits))
            prefix = f"bl{uuid.uuid4().hex[:6]}"
            await stack.enter_async_context(
                bench_instances(raw, args.instances, image=image, prefix=prefix)
            )
            for process in (server, relay):
                process.start()
                stack.callback(process.stop)
            headers = {"Authorization": f"Bearer {server.token()}"}
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60, limits=limits)
            )
            bare = await stack.enter_async_context(
                httpx.AsyncClient(base_url=relay.url, timeout=60, limits=limits)
            )
            listed = (await http.get("/api/v1/instances")).json()
            print(f"instances listed by the API: {listed['total']}")
            recursion = {"recursion": 1}
            calls = {
                "lxd": lambda: raw.get("/1.0/instances", params=recursion),
                "relay": lambda: bare.get("/1.0/instances", params=recursion),
                "api": lambda: http.get("/api/v1/instances"),
            }
            for _ in range(2):  # warm-up
                await rounds(calls, requests=40, concurrency=4)
            results = {
                clients: await rounds(calls, requests=args.requests, concurrency=clients)
                for clients in (1, 16)
            }
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    ok = True
    for clients, times in results.items():
        lxd, relay_ms, api = (statistics.median(times[k]) * 1000 for k in ("lxd", "relay", "api"))
        ratio = api / lxd
        ok = ok and ratio <= 1.15
        print(
            f"{clients:>2} client(s): LXD median {lxd:.2f} ms, API median {api:.2f} ms, "
            f"ratio {ratio:.3f} (n={len(times['api'])} each; target <= 1.15: "
            f"{'ok' if ratio <= 1.15 else 'OVER TARGET'})\n"
            f"{'':>13}floor: a bare ASGI relay of the same LXD call {relay_ms:.2f} ms = "
            f"{relay_ms / lxd:.3f}x LXD; the API's own share {api - relay_ms:+.2f} ms"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
