"""LXD's background operations, as LXD's own Go client has them (`client/operations.go`).

Every asynchronous write hands back an `Operation`: `wait(timeout)` waits until it is final
and raises its failure as a typed error (a timeout is always a 504), `finished(timeout)` is the
same with None for "still running" (a route answers that with a 202), `get(wait=...)` reads it
as LXD has it (finished or failed, not raised), `cancel()` asks LXD to stop it, and
`websockets(names)` attaches to its sockets (exec, console). Waiting is written here once.

Every operation shown to a client goes through `public_operation()`, which strips LXD's
secrets: websocket secrets (`metadata.fds`; whoever holds them can attach to an exec or
console) and token secrets (`metadata.secret` of image and certificate tokens; whoever holds
one becomes an LXD client). Viewers may read operations: neither may reach them.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from app.errors import LXDError, LXDNotFound, LXDTimeout, reword_not_found
from app.lxd.errors import error_from_lxd
from app.lxd.paths import lxd_path
from app.lxd.websockets import connect_operation_sockets, operation_secrets

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from app.lxd.client import LXDClient

STATUS_FAILURE = 400
STATUS_CANCELLED = 401
FINAL_STATUS_CODES = {200, STATUS_FAILURE, STATUS_CANCELLED}
SECRET_KEYS = ("fds", "secret")
# How long LXD keeps an operation after it finished (seconds); after that it is a 404.
OPERATION_RETENTION_HINT = "finished operations expire from LXD a few seconds after they end"
# How long a write waits for an operation it cannot answer without (seconds).
WRITE_WAIT = 120.0
# `Operation.get(wait=FOREVER)`: LXD holds the answer until the operation is final.
FOREVER = math.inf


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


class Operation:
    """One LXD background operation: what an asynchronous write hands back (`reply.operation`),
    or `lxd.operation(id)` for one named by a client. `metadata` is the operation as LXD last
    described it (in the async reply, or the latest `get`/`wait`)."""

    __slots__ = ("id", "lxd", "metadata")

    def __init__(self, lxd: LXDClient, operation_id: str, metadata: Any = None) -> None:
        self.lxd = lxd
        self.id = operation_id
        self.metadata: dict[str, Any] = dict(metadata) if isinstance(metadata, dict) else {}

    def __repr__(self) -> str:
        return f"Operation({self.id!r})"

    def _not_found(self) -> Any:
        return reword_not_found("Operation", self.id, hint=OPERATION_RETENTION_HINT)

    async def get(self, *, wait: float | None = None) -> dict[str, Any]:
        """The operation as LXD has it now; with `wait` (seconds, or `FOREVER`), once it is
        final or as it is when `wait` passed (still running). Its outcome is not raised.

        LXD 5.0 answers `/wait` with the operation in every case; 5.21+ answers a failure or a
        timeout with an error reply. Both end here as the operation itself.
        """
        with self._not_found():
            if wait is None:
                reply = await self.lxd.get(lxd_path("operations", self.id))
            else:
                try:
                    reply = await self._wait_reply(wait)
                except LXDNotFound:
                    raise
                except LXDError:
                    # Newer LXD reports failure/timeout as an error reply: read the operation.
                    reply = await self.lxd.get(lxd_path("operations", self.id))
        self.metadata = dict(reply.metadata or {})
        return self.metadata

    async def _wait_reply(self, wait: float) -> Any:
        forever = wait == FOREVER
        params = {"timeout": -1 if forever else int(wait)}
        read_timeout = None if forever else wait + self.lxd.timeout
        return await self.lxd.get(
            lxd_path("operations", self.id, "wait"), params=params, timeout=read_timeout
        )

    async def finished(self, timeout: float) -> dict[str, Any] | None:
        """The operation once it finished, or None when it was still running after `timeout`;
        its failure is raised as the typed error its reason calls for."""
        operation = await self.get(wait=timeout)
        if not is_final(operation):
            return None
        return raise_if_failed(operation)

    async def wait(self, timeout: float, *, what: str | None = None) -> dict[str, Any]:
        """Like `finished`, but `timeout` passing first is a 504 (`LXDTimeout`) that names
        what `what` was being done: for a write that cannot answer without the outcome."""
        operation = await self.finished(timeout)
        if operation is None:
            doing = what or f"LXD operation {self.id}"
            raise LXDTimeout(
                f"{doing} did not finish within {timeout:g} s (operation {self.id} is still "
                "running); retry when it is done"
            )
        return operation

    async def cancel(self) -> None:
        """Ask LXD to cancel; LXD refuses (400, with its reason) what cannot be cancelled."""
        with self._not_found():
            await self.lxd.delete(lxd_path("operations", self.id))

    def secrets(self) -> dict[str, str]:
        """`metadata.fds` of a websocket operation (exec, console): socket name -> secret."""
        return operation_secrets(self.metadata)

    async def websocket(self, name: str) -> ClientConnection:
        """Attach to the operation's socket `name` (`control`, `0`, `1`...)."""
        sockets = await connect_operation_sockets(self.lxd, self.id, self.secrets(), [name])
        return sockets[name]

    async def websockets(self, names: list[str]) -> dict[str, ClientConnection]:
        """Attach to the sockets `names`, in that order (control first, as LXD's own client
        does), all within LXD's deadline; none is left open if one fails."""
        return await connect_operation_sockets(self.lxd, self.id, self.secrets(), names)
