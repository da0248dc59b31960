"""Instance files: `PUT`/`GET /api/v1/instances/{name}/files?path=` against LXD's own
`POST`/`GET /1.0/instances/{name}/files?path=`, and the API process's memory.

Runs against the developer sandbox (`.sandbox/lxd`, started if needed; `--socket` names another
LXD, e.g. the test daemon's): makes a stopped container (files work on stopped containers, and
nothing runs in it), starts the app under uvicorn on 127.0.0.1 (local mode), then, alternately
straight to LXD's unix socket and through the API over TCP, uploads 200 MB of random bytes and
downloads them again, with the same bare-socket HTTP/1.1 client for both sides (the body sent
from memory in 1 MiB slices, read back `recv_into` a 1 MiB buffer: the fastest a client can be,
so that the ratio shows what the API costs). Each upload is checked by its size in LXD, each
download by its length (and the last one by its SHA-256). During each API transfer the app's
peak RSS is reset (`/proc/<pid>/clear_refs`) and read back (`VmHWM`). Everything is deleted at
the end.

    .venv/bin/python bench/files.py [--size-mb 200] [--runs 3] [--socket PATH]

Targets (issue 16): API throughput at least 0.8x of direct each way; the API's peak RSS grows
by less than 32 MB. Two cores are shared by LXD, the app and the client: run it on an idle
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ApiServer, lxd_client, lxd_op, sandbox_env, wait_if_async

BUFFER = 1024 * 1024
REMOTE_PATH = "/root/bench.bin"
Connect = tuple[str, object]


# --- the bare client ------------------------------------------------------------------------
def _read_head(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the headers ended")
        head += chunk
    raw_head, _, rest = head.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return status_line, headers, rest


def bare(
    connect: Connect,
    method: str,
    target: str,
    headers: dict[str, str],
    body: memoryview | None = None,
    digest: hashlib._Hash | None = None,
) -> int:
    """One request over a plain socket: `body` sent in 1 MiB slices; the answer's body read
    into one reused buffer (fed to `digest` if given). Returns the answer's body size."""
    kind, address = connect
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.connect(address)  # type: ignore[arg-type]
        lines = [f"{method} {target} HTTP/1.1", "Host: bench", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for start in range(0, len(body) if body is not None else 0, BUFFER):
            assert body is not None
            sock.sendall(body[start : start + BUFFER])
        status_line, reply_headers, rest = _read_head(sock)
        if status_line.split(" ")[1] not in {"200", "201"}:
            raise RuntimeError(f"{method} {target}: {status_line} {rest[:300]!r}")
        length = int(reply_headers.get("content-length", "-1"))
        got = len(rest)
        if digest is not None:
            digest.update(rest)
        buffer = bytearray(BUFFER)
        view = memoryview(buffer)
        while length < 0 or got < length:
            n = sock.recv_into(view)
            if n == 0:
                if length < 0:
                    break
                raise RuntimeError(f"short body: {got} of {length}")
            if digest is not None:
                digest.update(view[:n])
            got += n
        return got


# --- memory ---------------------------------------------------------------------------------
def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


# --- one run --------------------------------------------------------------------------------
class Bench:
    def __init__(self, socket_path: str, server: ApiServer, name: str, data: bytes) -> None:
        self.server = server
        self.data = memoryview(data)
        query = urlencode({"path": REMOTE_PATH})
        self.sides: dict[str, tuple[Connect, str, dict[str, str]]] = {
            "direct": (("unix", socket_path), f"/1.0/instances/{name}/files?{query}", {}),
            "api": (
                ("tcp", ("127.0.0.1", server.port)),
                f"/api/v1/instances/{name}/files?{query}",
                {"Authorization": f"Bearer {server.token()}"},
            ),
        }
        self.rates: dict[str, dict[str, list[float]]] = {"upload": {}, "download": {}}
        self.peaks: dict[str, list[int]] = {"upload": [], "download": []}
        self.cpu: dict[str, list[float]] = {"upload": [], "download": []}

    async def transfer(self, way: str, side: str) -> float:
        connect, target, headers = self.sides[side]
        if side == "api":
            reset_peak(self.server.pid)
            before = status_kb(self.server.pid, "VmRSS")
            cpu = cpu_seconds(self.server.pid)
        started = time.perf_counter()
        if way == "upload":
            method, upload = ("POST" if side == "direct" else "PUT"), self.data
            extra = {"Content-Type": "application/octet-stream"}
            if side == "direct":
                extra |= {"X-LXD-type": "file", "X-LXD-write": "overwrite"}
            await asyncio.to_thread(bare, connect, method, target, headers | extra, upload)
        else:
            got = await asyncio.to_thread(bare, connect, "GET", target, headers)
            if got != len(self.data):
                raise RuntimeError(f"{side} download: {got} bytes, expected {len(self.data)}")
        elapsed = time.perf_counter() - started
        if side == "api":
            self.peaks[way].append(status_kb(self.server.pid, "VmHWM") - before)
            self.cpu[way].append(cpu_seconds(self.server.pid) - cpu)
        rate = len(self.data) / elapsed / 1e6
        self.rates[way].setdefault(side, []).append(rate)
        return rate


async def check_size(raw: httpx.AsyncClient, name: str, size: int) -> None:
    async with raw.stream("GET", f"/1.0/instances/{name}/files", params={"path": REMOTE_PATH}) as r:
        if int(r.headers["content-length"]) != size:
            raise RuntimeError(f"LXD holds {r.headers['content-length']} bytes, not {size}")


def report(bench: Bench) -> bool:
    ok = True
    for way, by_side in bench.rates.items():
        direct, api = (statistics.median(by_side[k]) for k in ("direct", "api"))
        ratio = api / direct
        ok = ok and ratio >= 0.8
        growth = max(bench.peaks[way]) / 1024
        ok = ok and growth < 32
        print(
            f"{way:>8}: direct {direct:6.0f} MB/s, API {api:6.0f} MB/s, ratio {ratio:.3f} "
            f"(median of {len(by_side['api'])}; runs: direct "
            f"{[round(r) for r in by_side['direct']]}, API {[round(r) for r in by_side['api']]}); "
            "API peak RSS growth max "
            f"{growth:.1f} MB (runs: {[round(p / 1024, 1) for p in bench.peaks[way]]} MB); "
            f"API CPU per transfer {statistics.median(bench.cpu[way]):.2f} s"
        )
    print("targets: ratio >= 0.8 each way, RSS growth < 32 MB:", "met" if ok else "NOT met")
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--socket", help="LXD's unix socket (default: the developer sandbox's)")
    args = parser.parse_args()

    env = sandbox_env() if args.socket is None else {"LXD_SOCKET_PATH": args.socket}
    socket_path = env["LXD_SOCKET_PATH"]
    image = env.get("SANDBOX_IMAGE_ALIAS", "busybox")
    name = f"bf{uuid.uuid4().hex[:8]}"
    size = args.size_mb * 1000 * 1000
    data = os.urandom(size)
    expected = hashlib.sha256(data).hexdigest()
    print(
        f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores; "
        f"{size / 1e6:.0f} MB each way"
    )
    with tempfile.TemporaryDirectory(prefix="lxd-api-bench-") as tmp:
        server = ApiServer(socket_path, Path(tmp))
        async with lxd_client(socket_path) as raw:
            try:
                body = {"name": name, "source": {"type": "image", "alias": image}}
                await lxd_op(raw, await raw.post("/1.0/instances", json=body))
                server.start()
                bench = Bench(socket_path, server, name, data)
                for _ in range(args.runs):
                    for side in ("direct", "api"):
                        await bench.transfer("upload", side)
                        await check_size(raw, name, size)
                        await bench.transfer("download", side)
                digest = hashlib.sha256()  # once more, untimed, to check every byte
                connect, target, headers = bench.sides["api"]
                await asyncio.to_thread(bare, connect, "GET", target, headers, None, digest)
                if digest.hexdigest() != expected:
                    raise RuntimeError("the API's download differs from what was uploaded")
            finally:
                server.stop()
                await wait_if_async(raw, await raw.delete(f"/1.0/instances/{name}"), 120)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    return 0 if report(bench) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
