"""How a route answers when LXD started a background operation (and tells the audit log which
one: the request's entry carries its id, and `requested_by` knows who started it)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import JSONResponse

from app.api.deps import WaitQuery
from app.api.responses import lxd_answer
from app.audit import note_operation
from app.errors import LXDError
from app.lxd import LXDResponse, public_operation
from app.services.operations import operation_ref


async def operation_answer(
    response: LXDResponse,
    wait: WaitQuery | None = None,
    *,
    reword: Callable[[LXDError], Exception] | None = None,
) -> JSONResponse:
    """202 + operation reference; with `?wait=true`, 200 + the finished operation (a failed
    one raises its typed error); a synchronous LXD reply is answered 200 with its metadata.
    `reword` turns the route's LXD errors into its own (e.g. a refused state change into a
    400) before they are raised."""
    try:
        return await _answer(response, wait)
    except LXDError as exc:
        if reword is None:
            raise
        raise reword(exc) from exc


async def _answer(response: LXDResponse, wait: WaitQuery | None) -> JSONResponse:
    if not response.is_async:
        return lxd_answer(public_operation(response.metadata) or {})
    started = response.started()
    note_operation(started.id)  # before waiting: a failed wait is audited with it
    if wait is None or not wait.wait:
        return JSONResponse(operation_ref(started.id), status_code=202)
    # Not `started.wait()`: when `?timeout` passes first, the answer is the 202, not a 504.
    operation = await started.finished(wait.timeout)
    if operation is None:
        return JSONResponse(operation_ref(started.id), status_code=202)
    return lxd_answer(public_operation(operation))
