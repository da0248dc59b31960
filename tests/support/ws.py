"""WebSocket helpers for tests that speak to the app with the `websockets` client."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.exceptions import ConnectionClosed


async def close_code(ws: Any, timeout: float = 10) -> int | None:
    """Read (and drop) frames of a `websockets` client socket until the server closes it; its
    close code. Longer than `timeout` seconds: TimeoutError."""
    async with asyncio.timeout(timeout):
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
    return int(ws.close_code) if ws.close_code is not None else None
