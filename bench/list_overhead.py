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
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
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
        server = ApiServer(socket_path, Path(tmp))
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
