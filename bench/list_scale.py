"""Lists at scale: the read model against LXD's own lists, at 50, 250 and 1000 instances.

Runs against the developer sandbox (`.sandbox/lxd`, started if needed). For each size N it
keeps a project `scale-N` with N stopped busybox containers (created on the first run and
reused; `--cleanup` deletes them and their projects), starts the app under uvicorn (local
mode, the read model on) and measures, API and LXD direct side by side in one run:

* full list median: `GET /api/v1/instances?project=scale-N` against LXD's
  `GET /1.0/instances?recursion=1&project=scale-N`, at 1 and at 16 concurrent clients;
* a page: `?limit=50` against LXD's full list (LXD cannot page), same;
* LXD's CPU seconds per 100 reads (its process's utime+stime), direct and through the API;
* one instance: `GET /api/v1/instances/{name}` against `GET /1.0/instances/{name}`;
* the API's RSS before the first list and after the model holds every size;
* change to visible: `PATCH /1.0/instances/{name}` straight at LXD (as `lxc config set`),
  then the time until the API's `GET /instances/{name}` shows it, p50/p99 over 50 changes.

    .venv/bin/python bench/list_scale.py [--sizes 50,250,1000] [--requests 40] [--cleanup]

Prints a table and, as its last line, one JSON object. Targets (issue 15): at 1000 a page at
most 0.05x and a full list at most 0.3x of LXD's full list; at 50 the full list at most 0.8x;
LXD CPU per 100 reads at least 10x lower through the API; change-to-visible p99 < 100 ms;
RSS growth at 1000 < 50 MB; one instance at most 0.8x of LXD's. Two cores are shared by LXD,
the app and this client: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SANDBOX_DIR, ApiServer, lxd_client, lxd_op, sandbox_env, wait_if_async

SHARED = {"features.images": "false", "features.profiles": "false"}
Call = Callable[[], Awaitable[httpx.Response]]


# --- the instances, kept between runs ------------------------------------------------------------
async def ensure_size(raw: httpx.AsyncClient, size: int, image: str) -> str:
    project = f"scale-{size}"
    if (await raw.get(f"/1.0/projects/{project}")).status_code == 404:
        reply = await raw.post("/1.0/projects", json={"name": project, "config": SHARED})
        reply.raise_for_status()
    have = set()
    listed = await raw.get("/1.0/instances", params={"project": project})
    for url in listed.json()["metadata"] or []:
        have.add(url.split("?", 1)[0].rsplit("/", 1)[-1])
    missing = [f"s{i:04d}" for i in range(size) if f"s{i:04d}" not in have]
    if missing:
        print(f"creating {len(missing)} containers in {project} (kept for later runs) ...")
    gate = asyncio.Semaphore(6)

    async def create(name: str) -> None:
        async with gate:
            body = {"name": name, "source": {"type": "image", "alias": image}}
            await lxd_op(
                raw, await raw.post("/1.0/instances", params={"project": project}, json=body)
            )

    await asyncio.gather(*(create(name) for name in missing))
    return project


async def cleanup(raw: httpx.AsyncClient, sizes: list[int]) -> None:
    gate = asyncio.Semaphore(6)
    for size in sizes:
        project = f"scale-{size}"
        listed = await raw.get("/1.0/instances", params={"project": project})
        if listed.status_code == 404:
            continue
        names = [u.split("?", 1)[0].rsplit("/", 1)[-1] for u in listed.json()["metadata"] or []]

        async def delete(name: str, project: str = project) -> None:
            async with gate:
                reply = await raw.delete(f"/1.0/instances/{name}", params={"project": project})
                await wait_if_async(raw, reply, 300)

        await asyncio.gather(*(delete(name) for name in names))
        await raw.delete(f"/1.0/projects/{project}")
        print(f"removed {project} ({len(names)} instances)")


# --- measuring -----------------------------------------------------------------------------------
async def median_ms(call: Call, *, requests: int, concurrency: int) -> float:
    times: list[float] = []

    async def worker() -> None:
        for _ in range(max(1, requests // concurrency)):
            started = time.perf_counter()
            reply = await call()
            times.append(time.perf_counter() - started)
            if reply.status_code != 200:
                raise RuntimeError(f"{reply.request.url}: {reply.status_code} {reply.text[:200]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statistics.median(times) * 1000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def lxd_cpu_per_100(lxd_pid: int, call: Call) -> float:
    before = cpu_seconds(lxd_pid)
    for _ in range(100):
        await call()
    return cpu_seconds(lxd_pid) - before


async def change_to_visible(
    raw: httpx.AsyncClient, http: httpx.AsyncClient, project: str, name: str, changes: int
) -> list[float]:
    delays: list[float] = []
    for i in range(changes):
        mark = f"v{i}-{time.monotonic_ns()}"
        reply = await raw.patch(
            f"/1.0/instances/{name}",
            params={"project": project},
            json={"config": {"user.bench": mark}},
        )
        reply.raise_for_status()
        changed = time.perf_counter()
        while True:
            got = await http.get(f"/api/v1/instances/{name}", params={"project": project})
            if got.json().get("config", {}).get("user.bench") == mark:
                break
            await asyncio.sleep(0.001)
        delays.append((time.perf_counter() - changed) * 1000)
    return delays


async def measure_size(
    raw: httpx.AsyncClient, http: httpx.AsyncClient, project: str, requests: int, lxd_pid: int
) -> dict[str, float]:
    params = {"project": project}
    calls: dict[str, Call] = {
        "lxd_full": lambda: raw.get("/1.0/instances", params={**params, "recursion": 1}),
        "api_full": lambda: http.get("/api/v1/instances", params=params),
        "api_page": lambda: http.get("/api/v1/instances", params={**params, "limit": 50}),
        "lxd_one": lambda: raw.get("/1.0/instances/s0000", params=params),
        "api_one": lambda: http.get("/api/v1/instances/s0000", params=params),
    }
    for call in calls.values():  # warm up (and load the model)
        await call()
    out: dict[str, float] = {}
    for clients in (1, 16):
        for label, call in calls.items():
            out[f"{label}_c{clients}"] = await median_ms(
                call, requests=requests if clients == 1 else requests * 4, concurrency=clients
            )
    out["lxd_cpu_direct"] = await lxd_cpu_per_100(lxd_pid, calls["lxd_full"])
    out["lxd_cpu_api"] = await lxd_cpu_per_100(lxd_pid, calls["api_full"])
    return out


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,250,1000")
    parser.add_argument("--requests", type=int, default=40, help="per side at 1 client")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--cleanup", action="store_true", help="delete the scale-N projects")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    env = sandbox_env()
    socket_path, image = env["LXD_SOCKET_PATH"], env.get("SANDBOX_IMAGE_ALIAS", "busybox")
    lxd_pid = int((SANDBOX_DIR / "lxd.pid").read_text())
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with lxd_client(socket_path, limits=limits) as raw:
        if args.cleanup:
            await cleanup(raw, sizes)
            return 0
        projects = {size: await ensure_size(raw, size, image) for size in sizes}
        with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
            server = ApiServer(socket_path, Path(tmp))
            server.start()
            try:
                headers = {"Authorization": f"Bearer {server.token()}"}
                async with httpx.AsyncClient(
                    base_url=server.url, headers=headers, timeout=120, limits=limits
                ) as http:
                    rss_start = rss_mb(server.pid)
                    figures = {
                        size: await measure_size(raw, http, project, args.requests, lxd_pid)
                        for size, project in projects.items()
                    }
                    rss_end = rss_mb(server.pid)
                    delays = await change_to_visible(
                        raw, http, projects[min(sizes)], "s0001", args.changes
                    )
            finally:
                server.stop()
    return report(figures, sizes, rss_start, rss_end, delays)


def report(
    figures: dict[int, dict[str, float]],
    sizes: list[int],
    rss_start: float,
    rss_end: float,
    delays: list[float],
) -> int:
    print(
        f"{'instances':>9} {'c':>2} {'LXD full':>9} {'API full':>9} {'API page':>9} "
        f"{'LXD one':>8} {'API one':>8}   (median ms)"
    )
    for size in sizes:
        f = figures[size]
        for c in (1, 16):
            print(
                f"{size:>9} {c:>2} {f[f'lxd_full_c{c}']:>9.2f} {f[f'api_full_c{c}']:>9.2f} "
                f"{f[f'api_page_c{c}']:>9.2f} {f[f'lxd_one_c{c}']:>8.2f} {f[f'api_one_c{c}']:>8.2f}"
            )
        print(
            f"{'':>12}LXD CPU s per 100 full lists: direct {f['lxd_cpu_direct']:.3f}, "
            f"through the API {f['lxd_cpu_api']:.3f}"
        )
    big, small = figures[max(sizes)], figures[min(sizes)]
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    result = {
        "sizes": sizes,
        f"page_ratio_{max(sizes)}": big["api_page_c1"] / big["lxd_full_c1"],
        f"full_ratio_{max(sizes)}": big["api_full_c1"] / big["lxd_full_c1"],
        f"full_ratio_{min(sizes)}": small["api_full_c1"] / small["lxd_full_c1"],
        f"full_ratio_{min(sizes)}_c16": small["api_full_c16"] / small["lxd_full_c16"],
        "single_ratio_c1": small["api_one_c1"] / small["lxd_one_c1"],
        "single_ratio_c16": small["api_one_c16"] / small["lxd_one_c16"],
        "lxd_cpu_ratio": big["lxd_cpu_direct"] / max(big["lxd_cpu_api"], 0.001),
        "visible_p50_ms": statistics.median(delays),
        "visible_p99_ms": p99,
        f"rss_growth_mb_{max(sizes)}": rss_end - rss_start,
    }
    print(
        f"change to visible: p50 {result['visible_p50_ms']:.1f} ms, p99 {p99:.1f} ms "
        f"(n={len(delays)}); API RSS {rss_start:.1f} -> {rss_end:.1f} MB"
    )
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
