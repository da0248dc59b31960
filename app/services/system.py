"""What the system routes and the health probe ask of LXD: the server itself (`GET /1.0`)."""

from __future__ import annotations

from typing import Any

from app.lxd import LXD_API_ROOT, LXDClient


async def server_info(lxd: LXDClient, *, timeout: float | None = None) -> dict[str, Any]:
    """LXD's `GET /1.0`: versions, API extensions, environment (certificates included: callers
    pass on only what they choose)."""
    response = await lxd.get(LXD_API_ROOT, timeout=timeout)
    return dict(response.metadata) if isinstance(response.metadata, dict) else {}
