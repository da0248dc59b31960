"""Instances: `/api/v1/instances` (viewer reads; operator creates, changes, renames, deletes).

Lifecycle (`/state`, start/stop/...) is in `instance_lifecycle.py`, logs in `instance_logs.py`.
LXD objects are answered as LXD sent them (`lxd_answer()`); `response_model` documents them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from app.api.accepted import operation_answer
from app.api.deps import (
    ListParams,
    LXDDep,
    OperatorUser,
    ProjectDep,
    SettingsDep,
    ViewerRead,
    WaitParams,
)
from app.api.params import InstanceName
from app.api.readmodel import ReadModelDep
from app.api.responses import (
    ASYNC_RESPONSES,
    POLICY_RESPONSES,
    IfMatch,
    error_responses,
    lxd_answer,
)
from app.auth import policy_checks as policy
from app.core.config import API_V1_PREFIX
from app.schemas.common import OperationRef, Page
from app.schemas.instances import (
    InstanceCreate,
    InstancePatch,
    InstancePublic,
    InstanceRename,
    InstanceState,
    InstanceUpdate,
)
from app.services import instances as service

router = APIRouter(prefix=API_V1_PREFIX + "/instances", tags=["instances"])


@router.get(
    "",
    response_model=Page[InstancePublic | str],
    summary="List instances",
    description="`GET /1.0/instances` with `recursion=1` (`expand=false`: names only), "
    "`filter` passed through (e.g. `status eq Running`), `instance-type` to keep containers or "
    "VMs; sorted by name and paged here with `limit`/`offset`. An unknown project is a 404. "
    "Answered from the read model (kept in step with LXD's events; `Age` header: seconds "
    "since it was loaded) unless `filter` is given or the request says `Cache-Control: "
    "no-cache`, which read LXD. Role: viewer. Synchronous.",
    responses=error_responses(400, 404),
)
async def list_instances(
    lxd: LXDDep,
    project: ProjectDep,
    params: ListParams,
    _: ViewerRead,
    model: ReadModelDep,
    instance_type: Annotated[
        Literal["container", "virtual-machine"] | None,
        Query(alias="instance-type", description="Only containers or only virtual machines"),
    ] = None,
) -> JSONResponse:
    body, age = await service.list_instances(
        lxd, project=project, query=params, instance_type=instance_type, model=model
    )
    return lxd_answer(body, age=age)


@router.post(
    "",
    status_code=202,
    response_model=OperationRef,
    summary="Create an instance",
    description="`POST /1.0/instances` (async): 202 with the operation reference, or with "
    "`wait=true` the finished operation. A taken name is a 409 before anything starts. "
    "With `start: true` the instance is created first (the request waits for the creation, at "
    "most `timeout` seconds) and then started, as `lxc launch` does: the 202 then points at the "
    "**start** operation (LXD 5.0 has no create-and-start of its own). A copy "
    "(`source.type: copy`, of an instance or `instance/snapshot`) sent without `profiles` gets "
    "its source's, as `lxc copy` does (LXD 5.0 would give it none, and so no root disk); a "
    "missing source is a 404. Role: operator, "
    "held to the operator policy (`GET /policy`; a copy's source config and devices count): "
    "a refusal is a 403 `policy_violation` listing every violation, and nothing is created.",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404, 409), **POLICY_RESPONSES},
)
async def create_instance(
    body: InstanceCreate,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
    settings: SettingsDep,
) -> JSONResponse:
    lxd_body = body.lxd_body()
    await policy.enforce_instance_write(
        lxd, settings=settings, user=user, project=project, body=lxd_body
    )
    response = await service.create_instance(
        lxd, project=project, body=lxd_body, start=body.start, timeout=wait.timeout
    )
    return await operation_answer(response, wait)


@router.get(
    "/{name}",
    response_model=InstancePublic,
    summary="Get an instance",
    description="`GET /1.0/instances/{name}`. LXD's ETag comes back as `ETag`: send it as "
    "`If-Match` on PUT/PATCH to refuse a stale write. From the read model (with `Age`) "
    "unless `Cache-Control: no-cache`. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_instance(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, _: ViewerRead, model: ReadModelDep
) -> JSONResponse:
    instance, etag, age = await service.read_instance(lxd, name=name, project=project, model=model)
    return lxd_answer(instance, etag=etag, age=age)


@router.put(
    "/{name}",
    status_code=202,
    response_model=OperationRef,
    summary="Replace an instance's configuration",
    description="`PUT /1.0/instances/{name}` (async in LXD): replaces config, devices, profiles, "
    "description, ephemeral. `If-Match` is passed to LXD (a stale ETag is a 412). 202 with the "
    "operation reference, or with `wait=true` the finished operation. Role: operator, held "
    "to the operator policy on the whole body (403 `policy_violation`, nothing changed).",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404, 412), **POLICY_RESPONSES},
)
async def replace_instance(
    name: InstanceName,
    body: InstanceUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    lxd_body = body.lxd_body()
    await policy.enforce_instance_write(
        lxd, settings=settings, user=user, project=project, body=lxd_body, instance=name
    )
    response = await service.update_instance(
        lxd, name=name, project=project, body=lxd_body, if_match=if_match, replace=True
    )
    return await operation_answer(response, wait)


@router.patch(
    "/{name}",
    response_model=InstancePublic,
    summary="Update an instance's configuration",
    description="`PATCH /1.0/instances/{name}` (synchronous in LXD): merges config and devices "
    "key by key. `If-Match` is passed to LXD (a stale ETag is a 412). Answers the updated "
    "instance with its new `ETag`. Role: operator, held to the operator policy on what the "
    "patch sets (403 `policy_violation`, nothing changed).",
    responses={**error_responses(400, 404, 412), **POLICY_RESPONSES},
)
async def patch_instance(
    name: InstanceName,
    body: InstancePatch,
    lxd: LXDDep,
    project: ProjectDep,
    user: OperatorUser,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    lxd_body = body.lxd_body()
    await policy.enforce_instance_write(
        lxd, settings=settings, user=user, project=project, body=lxd_body, instance=name
    )
    await service.update_instance(
        lxd, name=name, project=project, body=lxd_body, if_match=if_match, replace=False
    )
    instance, etag = await service.get_instance(lxd, name=name, project=project)
    return lxd_answer(instance, etag=etag)


@router.delete(
    "/{name}",
    status_code=202,
    response_model=OperationRef,
    summary="Delete an instance",
    description="`DELETE /1.0/instances/{name}` (async). A running instance is a 409 unless "
    "`force=true`, which first stops it hard (`PUT .../state {action: stop, force: true}`, "
    "waited for) and then deletes it. 202 with the operation reference, or with `wait=true` "
    "the finished operation. Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(404, 409)},
)
async def delete_instance(
    name: InstanceName,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
    force: Annotated[bool, Query(description="Stop a running instance first")] = False,
) -> JSONResponse:
    response = await service.delete_instance(
        lxd, name=name, project=project, force=force, timeout=wait.timeout
    )
    return await operation_answer(response, wait)


@router.post(
    "/{name}/rename",
    status_code=202,
    response_model=OperationRef,
    summary="Rename an instance",
    description="`POST /1.0/instances/{name}` `{name}` (async). The instance must be stopped "
    "(409 otherwise) and the new name free (409). Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(404, 409)},
)
async def rename_instance(
    name: InstanceName,
    body: InstanceRename,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.rename_instance(lxd, name=name, project=project, new_name=body.name)
    return await operation_answer(response, wait)


@router.get(
    "/{name}/state",
    response_model=InstanceState,
    summary="Get an instance's runtime state",
    description="`GET /1.0/instances/{name}/state`: status, cpu, memory, disk, network "
    "interfaces with their addresses, pid, processes. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_instance_state(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> JSONResponse:
    return lxd_answer(await service.get_state(lxd, name=name, project=project))
