"""`/health` against the real daemon in both connection modes."""

from __future__ import annotations

import httpx

from app.core.config import Settings


async def test_health_reports_lxd(client: httpx.AsyncClient, settings: Settings) -> None:
    reply = await client.get("/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["lxd"] == {
        "status": "ok",
        "mode": str(settings.LXD_CONNECTION_MODE),
        "api_version": "1.0",
        "server_version": body["lxd"]["server_version"],
    }
    assert body["lxd"]["server_version"]
    assert reply.headers["x-request-id"]
