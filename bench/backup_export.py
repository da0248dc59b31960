"""Backup export: `GET /api/v1/instances/{name}/backups/{backup}/export` against LXD's own
`GET /1.0/instances/{name}/backups/{backup}/export`, and the API process's memory.

Runs against the developer sandbox (`.sandbox/lxd`, started if needed): makes a stopped
container holding a file of random bytes (default 220 MB, so the tarball is over 200 MB),
backs it up uncompressed (random bytes do not compress), starts the app under uvicorn on
127.0.0.1 (local mode), then downloads the tarball alternately straight from LXD's unix socket
and through the API over TCP, with the same reader for both: a bare-socket HTTP/1.1 reader
(`recv_into` a 1 MiB buffer; the fastest a client can be) and httpx's streaming reader (what a
Python client would use). A third side is the floor: the same LXD download through a bare ASGI
relay under the same uvicorn (`bench/_relay.py`), i.e. what one more process and a TCP hop cost
on this machine whatever the API does. During each API download the app's peak RSS is reset
(`/proc/<pid>/clear_refs`) and read back (`VmHWM`). Everything is deleted at the end.

    .venv/bin/python bench/backup_export.py [--size-mb 220] [--runs 3]

Targets (issue 4): API throughput at least 0.9x of direct; the API's peak RSS grows by less
than 32 MB. Two cores are shared by LXD, the app and the reader: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ApiServer, lxd_client, lxd_op, sandbox_env, wait_if_async

BUFFER = 1024 * 1024


# --- readers ------------------------------------------------------------------------------------
def bare_get(connect: tuple[str, object], path: str, headers: dict[str, str]) -> int:
    """GET over a plain socket; read the body into one reused buffer; return its size."""
    kind, address = connect
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.connect(address)  # type: ignore[arg-type]
        lines = [f"GET {path} HTTP/1.1", "Host: bench", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed before the headers ended")
            head += chunk
        raw_head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        if " 200 " not in status_line + " ":
            raise RuntimeError(f"{path}: {status_line} {rest[:300]!r}")
        length = next(
            int(line.split(":", 1)[1])
            for line in header_lines
            if line.lower().startswith("content-length:")
        )
        got = len(rest)
        buffer = memoryview(bytearray(BUFFER))
        while got < length:
            n = sock.recv_into(buffer)
            if n == 0:
                raise RuntimeError(f"short body: {got} of {length}")
            got += n
        return got


async def httpx_get(client: httpx.AsyncClient, path: str) -> int:
    got = 0
    async with client.stream("GET", path) as reply:
        if reply.status_code != 200:
            await reply.aread()
            raise RuntimeError(f"{path}: {reply.status_code} {reply.text[:300]}")
        async for chunk in reply.aiter_raw(BUFFER):
            got += len(chunk)
    return got


# --- memory ---------------------------------------------------------------------------------
def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


# --- the backup -----------------------------------------------------------------------------
async def random_body(size: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        n = min(BUFFER * 4, size - sent)
        sent += n
        yield os.urandom(n)


async def make_backup(raw: httpx.AsyncClient, name: str, image: str, size: int) -> int:
    body = {"name": name, "source": {"type": "image", "alias": image}}
    await lxd_op(raw, await raw.post("/1.0/instances", json=body))
    reply = await raw.post(
        f"/1.0/instances/{name}/files",
        params={"path": "/root/big.bin"},
        content=random_body(size),
        headers={"X-LXD-type": "file", "Content-Type": "application/octet-stream"},
    )
    reply.raise_for_status()
    backup = {"name": "big", "compression_algorithm": "none", "instance_only": True}
    await lxd_op(raw, await raw.post(f"/1.0/instances/{name}/backups", json=backup))
    async with raw.stream("GET", f"/1.0/instances/{name}/backups/big/export") as reply:
        return int(reply.headers["content-length"])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=220)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    env = sandbox_env()
    socket_path = env["LXD_SOCKET_PATH"]
    image = env.get("SANDBOX_IMAGE_ALIAS", "busybox")
    name = f"bx{uuid.uuid4().hex[:8]}"
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    results: dict[str, dict[str, list[float]]] = {}
    peaks: list[int] = []
    with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
        server = ApiServer(socket_path, Path(tmp))
        relay = ApiServer(socket_path, Path(tmp), app="_relay:app")
        async with lxd_client(socket_path) as raw:
            try:
                size = await make_backup(raw, name, image, args.size_mb * 1000 * 1000)
                print(f"backup tarball: {size / 1e6:.1f} MB (uncompressed)")
                server.start()
                relay.start()
                token = server.token()
                auth = {"Authorization": f"Bearer {token}"}
                direct_path = f"/1.0/instances/{name}/backups/big/export"
                api_path = f"/api/v1/instances/{name}/backups/big/export"
                targets = {
                    "direct": (("unix", socket_path), direct_path, {}),
                    "relay": (("tcp", ("127.0.0.1", relay.port)), direct_path, {}),
                    "api": (("tcp", ("127.0.0.1", server.port)), api_path, auth),
                }
                api_http = httpx.AsyncClient(base_url=server.url, headers=auth, timeout=300)
                relay_http = httpx.AsyncClient(base_url=relay.url, timeout=300)
                for _ in range(args.runs):
                    for label, (connect, path, headers) in targets.items():
                        for reader in ("bare socket", "httpx"):
                            if label == "api":
                                reset_peak(server.pid)
                                before = status_kb(server.pid, "VmRSS")
                            started = time.perf_counter()
                            if reader == "bare socket":
                                got = await asyncio.to_thread(bare_get, connect, path, headers)
                            else:
                                client = {"direct": raw, "relay": relay_http, "api": api_http}
                                got = await httpx_get(client[label], path)
                            elapsed = time.perf_counter() - started
                            if got != size:
                                raise RuntimeError(f"{label}: {got} bytes, expected {size}")
                            if label == "api":
                                peaks.append(status_kb(server.pid, "VmHWM") - before)
                            rates = results.setdefault(reader, {}).setdefault(label, [])
                            rates.append(size / elapsed / 1e6)
                await api_http.aclose()
                await relay_http.aclose()
            finally:
                server.stop()
                relay.stop()
                stop = {"action": "stop", "force": True}
                await raw.put(f"/1.0/instances/{name}/state", json=stop)
                await wait_if_async(raw, await raw.delete(f"/1.0/instances/{name}"), 120)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    ok = True
    for reader, by_label in results.items():
        direct, relay_rate, api = (
            statistics.median(by_label[k]) for k in ("direct", "relay", "api")
        )
        ratio = api / direct
        ok = ok and (ratio >= 0.9 or reader != "bare socket")
        print(
            f"{reader:>11}: direct {direct:7.0f} MB/s, API {api:7.0f} MB/s, ratio {ratio:.3f} "
            f"(median of {len(by_label['api'])}; runs: direct "
            f"{[round(r) for r in by_label['direct']]}, API {[round(r) for r in by_label['api']]})"
            f"\n{'':>13}floor: a bare ASGI relay {relay_rate:7.0f} MB/s = "
            f"{relay_rate / direct:.3f}x direct; the API reaches {api / relay_rate:.3f}x of it"
        )
    growth = max(peaks) / 1024
    ok = ok and growth < 32
    print(
        f"API peak RSS growth during an export: max {growth:.1f} MB "
        f"(all runs: {[round(p / 1024, 1) for p in peaks]} MB; target < 32 MB)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
