"""Event fan-out: 200 subscribers of `WS /api/v1/operations/ws`, delay from LXD's event to each.

Runs against the developer sandbox (`.sandbox/lxd`, started if needed): creates one stopped
busybox container, starts the app under uvicorn on 127.0.0.1 (a child process), opens N
subscribers (`type=lifecycle`; the hub shares one LXD connection among them), then changes the
container's description E times at a steady pace. Each change is one `instance-updated` event;
the delay is the time a subscriber receives it minus LXD's own `timestamp` for it (same host,
same clock). One subscriber straight on LXD's `/1.0/events` gives the baseline. The container is
deleted at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/event_fanout.py [--subscribers 200] [--events 100] [--interval 0.05]

Target (issue 5): p99 under 100 ms. Run it when the machine is otherwise idle (`uptime`).
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
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect, unix_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ApiServer, loadavg, lxd_client, lxd_op, sandbox_env, wait_if_async


def lxd_time(stamp: str) -> float:
    """LXD's RFC 3339 timestamp (nanoseconds) as epoch seconds."""
    head, _, rest = stamp.rstrip("Z").partition(".")
    micros = (rest + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{micros}+00:00").timestamp()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


async def listen(
    ws: ClientConnection, name: str, delays: dict[str, float], seen: asyncio.Event
) -> None:
    """Record, per event (LXD's timestamp names it), this subscriber's delay."""
    source = f"/1.0/instances/{name}"
    async for text in ws:
        received = time.time()
        event = json.loads(text)
        meta = event.get("metadata") or {}
        if meta.get("action") == "instance-updated" and meta.get("source") == source:
            seen.set()
            delays[event["timestamp"]] = received - lxd_time(event["timestamp"])


async def main(args: argparse.Namespace) -> None:
    env = sandbox_env()
    socket_path = env["LXD_SOCKET_PATH"]
    name = f"bench-ev-{uuid.uuid4().hex[:6]}"
    print(f"load average before: {loadavg()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
        server = ApiServer(socket_path, Path(tmp))
        raw = lxd_client(socket_path)
        subscribers: list[ClientConnection] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            image = env.get("SANDBOX_IMAGE_ALIAS", "busybox")
            body = {"name": name, "source": {"type": "image", "alias": image}}
            await lxd_op(raw, await raw.post("/1.0/instances", json=body))
            server.start()
            token = server.token()
            url = f"ws://127.0.0.1:{server.port}/api/v1/operations/ws?token={token}&type=lifecycle"
            for _ in range(args.subscribers):
                subscribers.append(await connect(url, ping_interval=None, compression=None))
            direct = await unix_connect(
                socket_path, "ws://lxd/1.0/events?type=lifecycle", ping_interval=None
            )
            streams: list[dict[str, float]] = [{} for _ in range(args.subscribers + 1)]
            ready = [asyncio.Event() for _ in range(args.subscribers + 1)]
            for i, ws in enumerate([*subscribers, direct]):
                tasks.append(asyncio.create_task(listen(ws, name, streams[i], ready[i])))

            async def describe(text: str) -> None:
                reply = await raw.patch(f"/1.0/instances/{name}", json={"description": text})
                reply.raise_for_status()

            # Until every subscriber is in (each subscribes after its handshake), send warm-ups.
            async with asyncio.timeout(60):
                while not all(e.is_set() for e in ready):
                    await describe("warm-up")
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)
            mark = time.time()
            started = time.perf_counter()
            for number in range(args.events):
                await describe(f"bench-{number}")
                await asyncio.sleep(args.interval)

            def measured(stream: dict[str, float]) -> list[float]:
                return [d for ts, d in stream.items() if lxd_time(ts) >= mark]

            async with asyncio.timeout(30):
                while any(len(measured(s)) < args.events for s in streams):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            for task in tasks:
                task.cancel()
            for ws in subscribers:
                await ws.close()
            server.stop()
            await wait_if_async(raw, await raw.delete(f"/1.0/instances/{name}"), 60)
            await raw.aclose()

    relayed = [d * 1000 for s in streams[:-1] for d in measured(s)]
    baseline = [d * 1000 for d in measured(streams[-1])]
    print(
        f"\n{args.subscribers} subscribers x {args.events} events "
        f"({args.events / elapsed:.0f} events/s, {len(relayed)} deliveries)"
    )
    for label, values in (("LXD direct (1 listener)", baseline), ("through the relay", relayed)):
        print(
            f"  {label:24}: p50 {statistics.median(values):6.1f} ms   "
            f"p99 {percentile(values, 0.99):6.1f} ms   max {max(values):6.1f} ms"
        )
    verdict = "met" if percentile(relayed, 0.99) < 100 else "NOT met"
    print(f"  target: relay p99 < 100 ms -> {verdict}")
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.05)
    options: Any = parser.parse_args()
    asyncio.run(main(options))
