"""The operations resource: list, get, wait on and cancel LXD's background operations, and the
reference (`operation_ref`) a route answers a started one with.

Every operation leaves here through `public_operation()`: LXD keeps the websocket secrets
(`metadata.fds`) of exec and console operations in the operation itself, also after it ended
(whoever holds them can attach to the command), and a token operation's `metadata.secret`
(an image download secret, or a trust token that makes its holder an LXD client).

`requested_by` (who started an operation through this API; LXD does not say) is filled in by
a lookup the caller passes (the audit log's), for the operations shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from app.core.config import API_V1_PREFIX
from app.errors import LXDBadGateway, LXDNotFound, not_found_detail
from app.lxd import OPERATION_RETENTION_HINT, LXDClient, lxd_path, public_operation
from app.services.listing import ensure_project
from app.utils.pagination import ListQuery, paginate

# LXD's `GET /1.0/operations?recursion=1` groups operations by status, in this order.
STATUS_GROUPS = ("running", "success", "failure", "cancelled")

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


def operation_ref(operation_id: str) -> dict[str, str]:
    """The four-field reference a 202 answer carries: LXD's URL, and ours to poll or wait on."""
    return {
        "operation_id": operation_id,
        "operation_url": lxd_path("operations", operation_id),
        "poll_url": f"{API_V1_PREFIX}/operations/{operation_id}",
        "wait_url": f"{API_V1_PREFIX}/operations/{operation_id}/wait",
    }


def operation_not_found(operation_id: str) -> LXDNotFound:
    return LXDNotFound(not_found_detail("Operation", operation_id, hint=OPERATION_RETENTION_HINT))


async def get_operation(
    lxd: LXDClient, operation_id: str, *, requested_by: RequestedBy | None = None
) -> dict[str, Any]:
    """One operation, without secrets; 404 that says finished operations expire."""
    operation = dict(public_operation(await lxd.operation(operation_id).get()))
    if requested_by is None:
        return operation
    return dict((await with_requested_by([operation], requested_by))[0])


async def wait_operation(
    lxd: LXDClient,
    operation_id: str,
    *,
    timeout: float,
    requested_by: RequestedBy | None = None,
) -> dict[str, Any]:
    """The operation once it finished, or as it is when `timeout` passed (still Running);
    a failed operation is shown, not raised (the client asked to see it)."""
    waited = await lxd.operation(operation_id).get(wait=timeout)
    operation = dict(public_operation(waited))
    if requested_by is None:
        return operation
    return dict((await with_requested_by([operation], requested_by))[0])


async def cancel_operation(lxd: LXDClient, operation_id: str) -> None:
    """Ask LXD to cancel; LXD refuses (400, with its reason) what cannot be cancelled."""
    await lxd.operation(operation_id).cancel()
