"""How a route answers when LXD started a background operation (and tells the audit log which
one: the request's entry carries its id, and `requested_by` knows who started it)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.api.deps import WaitQuery
from app.audit import note_operation
from app.lxd import LXDResponse, public_operation
from app.services.operations import operation_ref


async def operation_answer(response: LXDResponse, wait: WaitQuery | None = None) -> JSONResponse:
    """202 + operation reference; with `?wait=true`, 200 + the finished operation (a failed
    one raises its typed error); a synchronous LXD reply is answered 200 with its metadata."""
    if not response.is_async:
        return JSONResponse(public_operation(response.metadata) or {}, status_code=200)
    started = response.started()
    note_operation(started.id)  # before waiting: a failed wait is audited with it
    if wait is None or not wait.wait:
        return JSONResponse(operation_ref(started.id), status_code=202)
    # Not `started.wait()`: when `?timeout` passes first, the answer is the 202, not a 504.
    operation = await started.finished(wait.timeout)
    if operation is None:
        return JSONResponse(operation_ref(started.id), status_code=202)
    return JSONResponse(public_operation(operation), status_code=200)
