"""LXD background operations: list, get, wait, cancel, and the websockets of an operation.

Every operation leaves here through `public_operation()`: LXD keeps the websocket secrets
(`metadata.fds`) of exec and console operations in the operation itself, also after it ended
(whoever holds them can attach to the command), and a token operation's `metadata.secret`
(an image download secret, or a trust token that makes its holder an LXD client).

`requested_by` (who started an operation through this API; LXD does not say) is filled in by
a lookup the caller passes (the audit log's), for the operations shown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection

from app.errors import LXDBadGateway, LXDError, LXDNotFound, LXDTimeout
from app.lxd.client import LXDClient, lxd_path
from app.lxd.operation import (
    OPERATION_RETENTION_HINT,
    get_operation,
    public_operation,
    wait_operation,
)
from app.services.listing import ensure_project
from app.utils.pagination import ListQuery, paginate

# LXD's `GET /1.0/operations?recursion=1` groups operations by status, in this order.
STATUS_GROUPS = ("running", "success", "failure", "cancelled")
# LXD fails a websocket operation whose sockets are not all connected within 5 s of its start.
SOCKET_CONNECT_DEADLINE = 5.0

# operation ids -> the username that started each (those it knows).
RequestedBy = Callable[[Iterable[str]], Awaitable[Mapping[str, str]]]


async def list_operations(
    lxd: LXDClient,
    *,
    project: str,
    query: ListQuery,
    requested_by: RequestedBy | None = None,
) -> dict[str, Any]:
    """The operations of `project`, flattened from LXD's per-status groups into one page
    (full objects carry `requested_by` when a lookup is given)."""
    response = await lxd.get(
        lxd_path("operations"), project=project, params={"recursion": 1 if query.expand else 0}
    )
    groups = response.metadata or {}
    if not isinstance(groups, dict):
        raise LXDBadGateway("LXD listed operations in an unknown shape")
    items: list[Any] = []
    for status in (*STATUS_GROUPS, *sorted(set(groups) - set(STATUS_GROUPS))):
        for entry in groups.get(status) or []:
            if query.expand:
                items.append(public_operation(entry))
            else:
                items.append(str(entry).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    if not items and project:
        await ensure_project(lxd, project)
    page = paginate(items, limit=query.limit, offset=query.offset)
    if requested_by is not None and query.expand:
        page["items"] = await with_requested_by(page["items"], requested_by)
    return page


async def with_requested_by(operations: list[Any], lookup: RequestedBy) -> list[Any]:
    """`operations` (LXD objects) with `requested_by`: a username, or None."""
    ids = [str(op["id"]) for op in operations if isinstance(op, dict) and op.get("id")]
    known = await lookup(ids) if ids else {}
    return [
        {**op, "requested_by": known.get(str(op.get("id")))} if isinstance(op, dict) else op
        for op in operations
    ]


async def operation_ids(lxd: LXDClient, *, project: str) -> set[str]:
    """The ids of `project`'s operations (LXD lists per project; `GET /1.0/operations/{id}`
    answers any project's operation, so this is how to tell where one belongs)."""
    page = await list_operations(
        lxd, project=project, query=ListQuery(expand=False, filter=None, limit=None, offset=0)
    )
    return {str(item) for item in page["items"]}


def operation_not_found(operation_id: str) -> LXDNotFound:
    return LXDNotFound(f"Operation {operation_id} not found ({OPERATION_RETENTION_HINT})")


async def fetch_operation(
    lxd: LXDClient, operation_id: str, *, requested_by: RequestedBy | None = None
) -> dict[str, Any]:
    """One operation, without secrets; 404 that says finished operations expire."""
    operation = dict(public_operation(await get_operation(lxd, operation_id)))
    if requested_by is None:
        return operation
    return dict((await with_requested_by([operation], requested_by))[0])


async def wait_for_operation(
    lxd: LXDClient,
    operation_id: str,
    *,
    timeout: float,
    requested_by: RequestedBy | None = None,
) -> dict[str, Any]:
    """The operation once it finished, or as it is when `timeout` passed (still Running)."""
    operation = dict(public_operation(await wait_operation(lxd, operation_id, timeout=timeout)))
    if requested_by is None:
        return operation
    return dict((await with_requested_by([operation], requested_by))[0])


async def cancel_operation(lxd: LXDClient, operation_id: str) -> None:
    """Ask LXD to cancel; LXD refuses (400, with its reason) what cannot be cancelled."""
    try:
        await lxd.delete(lxd_path("operations", operation_id))
    except LXDNotFound as exc:
        raise operation_not_found(operation_id) from exc


# --- the websockets of an operation (exec, console) -----------------------------------------
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
