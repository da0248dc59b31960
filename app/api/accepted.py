"""How a route answers when LXD started a background operation (and tells the audit log which
one: the request's entry carries its id, and `requested_by` knows who started it)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.api.deps import WaitQuery
from app.audit import note_operation
from app.lxd.client import LXDClient, LXDResponse
from app.lxd.operation import accepted_or_finished, operation_ref, public_operation


async def operation_answer(
    lxd: LXDClient, response: LXDResponse, wait: WaitQuery | None = None
) -> JSONResponse:
    """202 + operation reference; with `?wait=true`, 200 + the finished operation (a failed
    one raises its typed error); a synchronous LXD reply is answered 200 with its metadata."""
    if not response.is_async:
        return JSONResponse(public_operation(response.metadata) or {}, status_code=200)
    note_operation(response.operation_id)  # before waiting: a failed wait is audited with it
    if wait is None or not wait.wait:
        return JSONResponse(operation_ref(response.operation_id), status_code=202)
    finished, body = await accepted_or_finished(lxd, response, wait=True, timeout=wait.timeout)
    return JSONResponse(body, status_code=200 if finished else 202)
