"""LXD background operations: list, get, wait, cancel. No answer carries websocket secrets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from app.api.deps import ListParams, LXDDep, OperatorUser, ProjectDep, ViewerRead
from app.api.responses import error_responses
from app.schemas.operations import OperationPage, OperationPublic
from app.services import operations as service

router = APIRouter(prefix="/operations", tags=["operations"])

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
OperationId = Annotated[
    str,
    Path(
        pattern=UUID_PATTERN,
        description="The operation's UUID (from a 202 reference or the list)",
        examples=["8c3b5f4c-5a6e-4f43-9a59-0d2f2c1d9f10"],
    ),
]

_EXPIRY = (
    "LXD forgets a finished operation a few seconds after it ends; after that it is a 404 that "
    "says so. Websocket secrets (`metadata.fds`) and token secrets are never shown."
)


@router.get(
    "",
    response_model=OperationPage,
    summary="List operations",
    description="`GET /1.0/operations?recursion=1` in the project: LXD groups operations by "
    "status (`running`, `success`, `failure`, `cancelled`); they come here as one list, each "
    "with its `status`, running ones first. `expand=false` gives ids only; `limit`/`offset` "
    f"page the list (`filter` is not supported by LXD here and is ignored). {_EXPIRY} "
    "Role: viewer.",
    responses=error_responses(404),
)
async def list_operations(
    lxd: LXDDep, project: ProjectDep, page: ListParams, _: ViewerRead
) -> dict[str, Any]:
    return await service.list_operations(lxd, project=project, query=page)


@router.get(
    "/{operation_id}",
    response_model=OperationPublic,
    summary="Get an operation",
    description=f"`GET /1.0/operations/{{id}}` (operation ids are global in LXD). {_EXPIRY} "
    "Role: viewer.",
    responses=error_responses(404),
)
async def get_operation(operation_id: OperationId, lxd: LXDDep, _: ViewerRead) -> Any:
    return await service.fetch_operation(lxd, operation_id)


@router.get(
    "/{operation_id}/wait",
    response_model=OperationPublic,
    summary="Wait for an operation",
    description="`GET /1.0/operations/{id}/wait?timeout=N`: 200 with the operation once it "
    "ended (`Success`, `Failure` with `err`, `Cancelled`), or with `status: Running` when the "
    "timeout passed first. The same answer on LXD 5.0 and 5.21+ (which reports a failure or a "
    f"timeout as an error reply). {_EXPIRY} Role: viewer.",
    responses=error_responses(404),
)
async def wait_operation(
    operation_id: OperationId,
    lxd: LXDDep,
    _: ViewerRead,
    timeout: Annotated[
        int, Query(ge=0, le=3600, description="Seconds to wait at most (0: answer at once)")
    ] = 30,
) -> Any:
    return await service.wait_for_operation(lxd, operation_id, timeout=timeout)


@router.delete(
    "/{operation_id}",
    status_code=204,
    response_class=Response,
    summary="Cancel an operation",
    description="`DELETE /1.0/operations/{id}`: asks LXD to cancel a running operation. Only "
    "operations LXD marks `may_cancel` (tokens, some transfers) can be; the others (exec, "
    "create, start...) and finished ones are a 400 with LXD's reason. Poll the operation to "
    f"see it `Cancelled`. {_EXPIRY} Role: operator.",
    responses={204: {"description": "LXD cancelled the operation"}, **error_responses(400, 404)},
)
async def cancel_operation(operation_id: OperationId, lxd: LXDDep, user: OperatorUser) -> Response:
    await service.cancel_operation(lxd, operation_id)
    return Response(status_code=204)
