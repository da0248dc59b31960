"""Polling until something is true."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(check: Callable[[], bool], timeout: float = 5) -> None:
    """Poll `check` every 10 ms; longer than `timeout` seconds: TimeoutError."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)
