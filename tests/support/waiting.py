"""Polling until something is true: a check of ours, or the app's read model caught up with LXD."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx


async def wait_until(check: Callable[[], bool], timeout: float = 5) -> None:
    """Poll `check` every 10 ms; longer than `timeout` seconds: TimeoutError."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def caught_up(app: Any, raw: httpx.AsyncClient, name: str, project: str = "default") -> None:
    """Wait until the app's read model has every LXD event sent so far (a change made straight
    at LXD is in the API's reads once its event arrived: API.md, "Lists at scale"). LXD sends
    events in order on one connection, so an event of our own making is the barrier: reading
    the instance's metadata sends `instance-metadata-retrieved`."""
    model = getattr(app.state, "read_model", None)
    if model is None or not model.connected:
        return
    since = model.events
    await raw.get(f"/1.0/instances/{name}/metadata", params={"project": project})

    def arrived() -> bool:
        new = list(model.recent)[-(model.events - since) :] if model.events > since else []
        return (project, "instance-metadata-retrieved", name) in new

    async with asyncio.timeout(10):
        while not arrived():
            await asyncio.sleep(0.01)
