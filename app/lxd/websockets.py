"""The websockets of an LXD operation (exec, console): their secrets, connecting to all of them
within LXD's deadline, closing them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from app.errors import LXDBadGateway, LXDError, LXDTimeout
from app.lxd.paths import lxd_path

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from app.lxd.client import LXDClient

# LXD fails a websocket operation whose sockets are not all connected within 5 s of its start.
SOCKET_CONNECT_DEADLINE = 5.0


def operation_secrets(operation: Any) -> dict[str, str]:
    """`metadata.fds` of a websocket operation: socket name -> secret."""
    metadata = operation.get("metadata") if isinstance(operation, dict) else None
    fds = metadata.get("fds") if isinstance(metadata, dict) else None
    if not isinstance(fds, dict) or not all(isinstance(v, str) for v in fds.values()):
        raise LXDBadGateway("LXD started a websocket operation without its sockets")
    return dict(fds)


async def connect_operation_sockets(
    lxd: LXDClient, operation_id: str, secrets: Mapping[str, str], order: Iterable[str]
) -> dict[str, ClientConnection]:
    """Connect to the operation's websockets in `order` (control first, as LXD's own client
    does), all within LXD's 5 s deadline. On any failure, close those already open."""
    sockets: dict[str, ClientConnection] = {}
    path = lxd_path("operations", operation_id, "websocket")
    try:
        async with asyncio.timeout(SOCKET_CONNECT_DEADLINE):
            for name in order:
                sockets[name] = await lxd.websocket(path, params={"secret": secrets[name]})
    except TimeoutError as exc:
        await close_sockets(sockets.values())
        raise LXDTimeout("LXD did not accept the operation's websockets in time") from exc
    except (LXDError, KeyError) as exc:
        await close_sockets(sockets.values())
        if isinstance(exc, KeyError):
            raise LXDBadGateway("LXD did not name one of the operation's sockets") from exc
        raise
    except BaseException:
        await close_sockets(sockets.values())
        raise
    return sockets


async def close_sockets(sockets: Iterable[ClientConnection]) -> None:
    """Close LXD websockets, each bounded by its close timeout; errors do not matter here."""
    conns = list(sockets)
    if not conns:
        return
    results = await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)
    for conn, result in zip(conns, results, strict=True):
        if isinstance(result, BaseException):
            with contextlib.suppress(Exception):
                conn.transport.abort()
