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
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import connect, unix_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ApiServer, loadavg, lxd_client, lxd_op, sandbox_env, wait_if_async


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


async def main(args: argparse.Namespace) -> None:
    env = sandbox_env()
    socket_path = env["LXD_SOCKET_PATH"]
    name = f"bench-exec-{uuid.uuid4().hex[:6]}"
    print(f"load average before: {loadavg()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
        server = ApiServer(socket_path, Path(tmp))
        raw = lxd_client(socket_path)
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
            stop = {"action": "stop", "force": True}
            await wait_if_async(raw, await raw.put(f"/1.0/instances/{name}/state", json=stop), 60)
            await wait_if_async(raw, await raw.delete(f"/1.0/instances/{name}"), 60)
            await raw.aclose()
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=200_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
