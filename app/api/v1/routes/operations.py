"""LXD background operations: list, get, wait, cancel. No answer carries websocket secrets;
every operation carries `requested_by` (who started it through this API, from the audit log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.requests import HTTPConnection

from app.api.deps import CurrentUser, ListParams, LXDDep, ProjectDep, ViewerRead
from app.api.responses import LXDJSONResponse, error_responses, lxd_answer
from app.auth import access
from app.auth.access import Scope
from app.auth.errors import PermissionDeniedError
from app.core.config import API_V1_PREFIX
from app.core.security import Role
from app.db.models import User
from app.schemas.operations import OperationPage, OperationPublic
from app.services import operations as service

router = APIRouter(prefix=API_V1_PREFIX + "/operations", tags=["operations"])

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
OperationId = Annotated[
    str,
    Path(
        pattern=UUID_PATTERN,
        description="The operation's UUID (from a 202 reference or the list)",
        examples=["8c3b5f4c-5a6e-4f43-9a59-0d2f2c1d9f10"],
    ),
]


class OperationRequirement:
    """The caller's role in the project the operation belongs to. Operation ids are global in
    LXD: a caller whose global role reaches `min_role` may act on any; anyone else only on the
    operations of its projects (one LXD list per bound project finds it). An operation of a
    project the caller has no role in is a 404, like one that does not exist."""

    scope: Scope = "project"

    def __init__(self, min_role: Role) -> None:
        self.min_role = min_role

    async def __call__(self, operation_id: OperationId, lxd: LXDDep, user: CurrentUser) -> User:
        if access.global_role(user).admits(self.min_role):
            return user
        for project in sorted(user.projects):
            if not access.role_in(user, project).admits(self.min_role):
                continue
            if operation_id in await service.operation_ids(lxd, project=project):
                return user
        if access.sees_every_project(user):
            raise PermissionDeniedError(f"This action needs the {self.min_role} role")
        raise service.operation_not_found(operation_id)

    def __repr__(self) -> str:
        return f"operation_role({self.min_role})"


async def get_requested_by(connection: HTTPConnection) -> service.RequestedBy:
    """The audit log's lookup: operation id -> the username that started it."""
    lookup: service.RequestedBy = connection.app.state.audit_log.requested_by
    return lookup


RequestedByDep = Annotated[service.RequestedBy, Depends(get_requested_by)]
OperationViewer = Annotated[User, Depends(OperationRequirement(Role.viewer))]
OperationOperator = Annotated[User, Depends(OperationRequirement(Role.operator))]

_EXPIRY = (
    "LXD forgets a finished operation a few seconds after it ends; after that it is a 404 that "
    "says so. Websocket secrets (`metadata.fds`) and token secrets are never shown. "
    "`requested_by`: the user who started it through this API (null if started elsewhere)."
)


@router.get(
    "",
    response_model=OperationPage,
    summary="List operations",
    description="`GET /1.0/operations?recursion=1` in the project: LXD groups operations by "
    "status (`running`, `success`, `failure`, `cancelled`); they come here as one list, each "
    "with its `status`, running ones first. `expand=false` gives ids only; `limit`/`offset` "
    f"page the list (`filter` is not supported by LXD here and is ignored). {_EXPIRY} "
    "Role: viewer in the project.",
    responses=error_responses(404),
)
async def list_operations(
    lxd: LXDDep, project: ProjectDep, page: ListParams, _: ViewerRead, who: RequestedByDep
) -> LXDJSONResponse:
    body = await service.list_operations(lxd, project=project, query=page, requested_by=who)
    return lxd_answer(body, model=OperationPage)


@router.get(
    "/{operation_id}",
    response_model=OperationPublic,
    summary="Get an operation",
    description=f"`GET /1.0/operations/{{id}}` (operation ids are global in LXD). {_EXPIRY} "
    "Role: viewer in the operation's project (404 for another project's).",
    responses=error_responses(404),
)
async def get_operation(
    operation_id: OperationId, lxd: LXDDep, _: OperationViewer, who: RequestedByDep
) -> LXDJSONResponse:
    operation = await service.get_operation(lxd, operation_id, requested_by=who)
    return lxd_answer(operation, model=OperationPublic)


@router.get(
    "/{operation_id}/wait",
    response_model=OperationPublic,
    summary="Wait for an operation",
    description="`GET /1.0/operations/{id}/wait?timeout=N`: 200 with the operation once it "
    "ended (`Success`, `Failure` with `err`, `Cancelled`), or with `status: Running` when the "
    "timeout passed first. The same answer on LXD 5.0 and 5.21+ (which reports a failure or a "
    f"timeout as an error reply). {_EXPIRY} Role: viewer in the operation's project.",
    responses=error_responses(404),
)
async def wait_operation(
    operation_id: OperationId,
    lxd: LXDDep,
    _: OperationViewer,
    who: RequestedByDep,
    timeout: Annotated[
        int, Query(ge=0, le=3600, description="Seconds to wait at most (0: answer at once)")
    ] = 30,
) -> LXDJSONResponse:
    operation = await service.wait_operation(lxd, operation_id, timeout=timeout, requested_by=who)
    return lxd_answer(operation, model=OperationPublic)


@router.delete(
    "/{operation_id}",
    status_code=204,
    response_class=Response,
    summary="Cancel an operation",
    description="`DELETE /1.0/operations/{id}`: asks LXD to cancel a running operation. Only "
    "operations LXD marks `may_cancel` (tokens, some transfers) can be; the others (exec, "
    "create, start...) and finished ones are a 400 with LXD's reason. Poll the operation to "
    f"see it `Cancelled`. {_EXPIRY} Role: operator in the operation's project.",
    responses={204: {"description": "LXD cancelled the operation"}, **error_responses(400, 404)},
)
async def cancel_operation(
    operation_id: OperationId, lxd: LXDDep, user: OperationOperator
) -> Response:
    await service.cancel_operation(lxd, operation_id)
    return Response(status_code=204)
