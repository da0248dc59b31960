"""Operation references and waiting on LXD's background operations.

Every operation that passes through this API goes through `public_operation()`, which strips
LXD's secrets: websocket secrets (`metadata.fds`; whoever holds them can attach to an exec or
console) and token secrets (`metadata.secret` of image and certificate tokens; whoever holds
one becomes an LXD client). Viewers may read operations: neither may reach them.
"""

from __future__ import annotations

import copy
from typing import Any

from app.errors import LXDError, LXDNotFound, error_from_lxd
from app.lxd.client import LXDClient, LXDResponse, lxd_path

API_PREFIX = "/api/v1"
STATUS_FAILURE = 400
STATUS_CANCELLED = 401
FINAL_STATUS_CODES = {200, STATUS_FAILURE, STATUS_CANCELLED}
SECRET_KEYS = ("fds", "secret")
# How long LXD keeps an operation after it finished (seconds); after that it is a 404.
OPERATION_RETENTION_HINT = "finished operations expire from LXD a few seconds after they end"


def operation_ref(operation_id: str) -> dict[str, str]:
    """The four-field reference a 202 answer carries."""
    return {
        "operation_id": operation_id,
        "operation_url": f"/1.0/operations/{operation_id}",
        "poll_url": f"{API_PREFIX}/operations/{operation_id}",
        "wait_url": f"{API_PREFIX}/operations/{operation_id}/wait",
    }


def public_operation(operation: Any) -> Any:
    """A copy of `operation` without websocket secrets, safe to show a client."""
    if not isinstance(operation, dict):
        return operation
    cleaned = copy.copy(operation)
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict) and any(key in metadata for key in SECRET_KEYS):
        cleaned["metadata"] = {k: v for k, v in metadata.items() if k not in SECRET_KEYS}
    return cleaned


def is_final(operation: dict[str, Any]) -> bool:
    return operation.get("status_code") in FINAL_STATUS_CODES


def raise_if_failed(operation: dict[str, Any]) -> dict[str, Any]:
    """Turn a failed or cancelled operation into the typed error its reason calls for."""
    code = operation.get("status_code")
    if code == STATUS_FAILURE:
        raise error_from_lxd(500, str(operation.get("err") or "The LXD operation failed"))
    if code == STATUS_CANCELLED:
        raise error_from_lxd(500, str(operation.get("err") or "The LXD operation was cancelled"))
    return operation


async def get_operation(lxd: LXDClient, operation_id: str) -> dict[str, Any]:
    try:
        response = await lxd.get(lxd_path("operations", operation_id))
    except LXDNotFound as exc:
        raise LXDNotFound(
            f"Operation {operation_id} not found ({OPERATION_RETENTION_HINT})"
        ) from exc
    return dict(response.metadata or {})


async def wait_operation(
    lxd: LXDClient, operation_id: str, *, timeout: float | None = None
) -> dict[str, Any]:
    """Wait for an operation and return it: finished, or still running when `timeout` passed.

    LXD 5.0 answers `/wait` with the operation in every case; 5.21+ answers a failure or a
    timeout with an error reply. Both end here as the operation itself.
    """
    params = {"timeout": int(timeout) if timeout is not None else -1}
    read_timeout = (timeout + lxd.timeout) if timeout is not None else None
    try:
        response = await lxd.get(
            lxd_path("operations", operation_id, "wait"), params=params, timeout=read_timeout
        )
    except LXDNotFound as exc:
        raise LXDNotFound(
            f"Operation {operation_id} not found ({OPERATION_RETENTION_HINT})"
        ) from exc
    except LXDError:
        # Newer LXD reports failure/timeout as an error reply: read the operation itself.
        return await get_operation(lxd, operation_id)
    return dict(response.metadata or {})


async def accepted_or_finished(
    lxd: LXDClient, response: LXDResponse, *, wait: bool, timeout: float | None
) -> tuple[bool, dict[str, Any]]:
    """What a route that started an operation answers.

    Returns `(finished, body)`: without `wait`, or when `timeout` passed first,
    `(False, operation reference)` for a 202; with `wait`, `(True, final operation)`, or the
    operation's failure raised as a typed error.
    """
    operation_id = response.operation_id
    if not wait:
        return False, operation_ref(operation_id)
    operation = await wait_operation(lxd, operation_id, timeout=timeout)
    if not is_final(operation):
        return False, operation_ref(operation_id)
    raise_if_failed(operation)
    return True, public_operation(operation)
