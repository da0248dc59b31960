"""Fakes of LXD itself, for unit tests (no daemon).

* `FakeLXD`: LXD's REST API as an httpx handler, for `make_unit_app(lxd_handler=fake)` (the
  app's LXD client then talks to `httpx.MockTransport(fake)`). Answers come from `routes`
  (built with `tests.support.lxd_replies`); it records every request it got.
  `client_for(make_unit_app, fake)` gives a client of a unit app that talks to it.
* `fake_lxd_handler`: the smallest such LXD (`GET /1.0` answers, all else is a 404); the
  default of `make_unit_app`, and the fallback for a fake that only adds a few routes.
* `FakeEventStream`: LXD's `/1.0/events` websocket on a unix socket, stopped and restarted at
  will, and `event(n)`, a numbered lifecycle event to send through it.

A fake at another level (a raw HTTP server on a socket, a stand-in for the client object) lives
in the one test file that needs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.server import Server, ServerConnection, unix_serve

from app.core.config import Settings
from tests.support.auth import auth_for
from tests.support.lxd_replies import error, sync

Route = Callable[[httpx.Request], httpx.Response]

FAKE_LXD_SERVER: dict[str, Any] = {
    "api_extensions": ["storage", "network", "projects"],
    "api_status": "stable",
    "api_version": "1.0",
    "auth": "trusted",
    "auth_methods": ["tls"],
    "public": False,
    "config": {"core.https_address": "[::]:8443", "core.trust_password": True},
    "environment": {
        "addresses": ["10.0.0.1:8443"],
        "architectures": ["x86_64", "i686"],
        "certificate": "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n",
        "certificate_fingerprint": "f" * 64,
        "driver": "lxc",
        "driver_version": "5.0.3",
        "firewall": "nftables",
        "kernel": "Linux",
        "kernel_architecture": "x86_64",
        "kernel_features": {"netnsid_getifaddrs": "true", "seccomp_listener": "true"},
        "kernel_version": "6.8.0-fake",
        "lxc_features": {"cgroup2": "true"},
        "os_name": "Ubuntu",
        "os_version": "24.04",
        "project": "default",
        "server": "lxd",
        "server_clustered": False,
        "server_event_mode": "full-mesh",
        "server_name": "fakehost",
        "server_pid": 4242,
        "server_version": "5.21.1",
        "storage": "dir",
        "storage_version": "1",
        "storage_supported_drivers": [{"Name": "dir", "Version": "1", "Remote": False}],
    },
}


def fake_lxd_handler(request: httpx.Request) -> httpx.Response:
    """A tiny LXD: `GET /1.0` answers, everything else is LXD's 404."""
    if request.method == "GET" and request.url.path in {"/1.0", "/1.0/"}:
        return sync(FAKE_LXD_SERVER)
    return error(404, "Not Found")


def _not_found(_: httpx.Request) -> httpx.Response:
    return error(404, "not found")


class FakeLXD:
    """LXD's REST API: `routes[(method, path)]` answers a request, anything else goes to
    `fallback` (LXD's 404, even for `GET /1.0`, unless told otherwise). Every request is kept
    in `requests`, in order."""

    def __init__(
        self, routes: Mapping[tuple[str, str], Route] | None = None, *, fallback: Route = _not_found
    ) -> None:
        self.routes = dict(routes or {})
        self.fallback = fallback
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path), self.fallback)
        return answer(request)

    def sent(self, method: str, path: str) -> list[Any]:
        """The JSON bodies of the requests to `method path`, in order."""
        return [
            json.loads(r.content or b"null")
            for r in self.requests
            if (r.method, r.url.path) == (method, path)
        ]

    @property
    def calls(self) -> list[str]:
        """`"METHOD /path"` of every request, in order."""
        return [f"{r.method} {r.url.path}" for r in self.requests]

    @property
    def writes(self) -> list[str]:
        return [call for call in self.calls if not call.startswith("GET ")]


class FakeEventStream:
    """LXD's `/1.0/events` endpoint on a unix socket, as far as the event hub can tell."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: Server | None = None
        self.connections: list[ServerConnection] = []
        self.requests: list[str] = []
        self.total_connects = 0

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self.server = await unix_serve(self._handler, str(self.path), ping_interval=None)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.server = None

    async def _handler(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        self.total_connects += 1
        self.requests.append(connection.request.path if connection.request else "")
        try:
            await connection.wait_closed()
        finally:
            self.connections.remove(connection)

    async def send(self, text: str) -> None:
        for connection in list(self.connections):
            await connection.send(text)


def event(n: int, pad: int = 0, **extra: Any) -> str:
    """Lifecycle event number `n` (with the monotonic time it was made), `pad` bytes longer."""
    body = {
        "type": "lifecycle",
        "timestamp": "2026-01-01T00:00:00Z",
        "metadata": {"action": "instance-started", "n": n, "sent": time.monotonic()},
        "location": "none",
        "project": "default",
        "pad": "x" * pad,
        **extra,
    }
    return json.dumps(body)


async def client_for(
    make_unit_app: Callable[..., Any], fake: FakeLXD, settings: Settings | None = None
) -> tuple[httpx.AsyncClient, dict[str, str]]:
    """A client of a new unit app whose LXD is `fake`, and an admin's headers. Close it."""
    app = await make_unit_app(settings=settings, lxd_handler=fake)
    auth = await auth_for(app)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return http, auth.headers("admin")
