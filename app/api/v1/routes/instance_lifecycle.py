"""Instance lifecycle: `PUT /instances/{name}/state` and the POST shortcuts (operator)."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.accepted import operation_answer
from app.api.deps import LXDDep, OperatorUser, ProjectDep, WaitParams
from app.api.params import InstanceName
from app.api.responses import ASYNC_RESPONSES, error_responses
from app.core.config import API_V1_PREFIX
from app.schemas.common import OperationRef
from app.schemas.instances import LifecycleOptions, StateAction, StateChange
from app.services import instances as service

router = APIRouter(prefix=API_V1_PREFIX + "/instances", tags=["instances"])


_TRANSITIONS = (
    "An impossible transition (stopping a stopped instance, freezing a stopped one) fails inside "
    "LXD's operation: without `wait` the 202 is still given and the operation ends in failure; "
    "with `wait=true` it is a 400 with LXD's reason."
)


@router.put(
    "/{name}/state",
    status_code=202,
    response_model=OperationRef,
    summary="Change an instance's state",
    description="`PUT /1.0/instances/{name}/state` `{action, force, timeout, stateful}` (async): "
    "`action` is one of start, stop, restart, freeze, unfreeze (anything else: 422). "
    f"{_TRANSITIONS} Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404)},
)
async def change_state(
    name: InstanceName,
    body: StateChange,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.change_state(
        lxd,
        name=name,
        project=project,
        action=body.action,
        force=body.force,
        timeout=body.timeout,
        stateful=body.stateful,
    )
    return await operation_answer(response, wait, reword=service.transition_error)


def _shortcut(action: StateAction) -> None:
    async def endpoint(
        name: InstanceName,
        lxd: LXDDep,
        project: ProjectDep,
        wait: WaitParams,
        user: OperatorUser,
        body: LifecycleOptions | None = None,
    ) -> JSONResponse:
        options = body or LifecycleOptions()
        response = await service.change_state(
            lxd,
            name=name,
            project=project,
            action=action,
            force=options.force,
            timeout=options.timeout,
            stateful=options.stateful,
        )
        return await operation_answer(response, wait, reword=service.transition_error)

    endpoint.__name__ = f"{action}_instance"
    router.add_api_route(
        f"/{{name}}/{action}",
        endpoint,
        methods=["POST"],
        status_code=202,
        response_model=OperationRef,
        summary=f"{action.capitalize()} an instance",
        description=f"`PUT /1.0/instances/{{name}}/state` `{{action: {action}}}` (async), with "
        f"the optional body `{{force, timeout, stateful}}`. {_TRANSITIONS} Role: operator.",
        responses={**ASYNC_RESPONSES, **error_responses(400, 404)},
    )


for _action in get_args(StateAction):
    _shortcut(_action)
