"""Snapshots: `/api/v1/instances/{name}/snapshots` (viewer reads; operator writes)."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Path
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
from app.api.responses import ASYNC_RESPONSES, POLICY_RESPONSES, error_responses, lxd_answer
from app.auth import policy_checks as policy
from app.core.config import API_V1_PREFIX
from app.errors import LXDNotFound
from app.schemas.common import NAME_PATTERN, OperationRef, Page
from app.schemas.snapshots import SnapshotCreate, SnapshotPublic, SnapshotRestore, SnapshotUpdate
from app.services import snapshots as service

router = APIRouter(prefix=API_V1_PREFIX + "/instances/{name}/snapshots", tags=["snapshots"])

SnapshotName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="Snapshot name", examples=["before-upgrade"])
]


@router.get(
    "",
    response_model=Page[SnapshotPublic | str],
    summary="List an instance's snapshots",
    description="`GET /1.0/instances/{name}/snapshots` with `recursion=1` (`expand=false`: "
    "names only), sorted by name and paged here with `limit`/`offset`. `filter` is passed on, but "
    "LXD 5.0 filters only instances, images and volumes: it returns all snapshots. Role: viewer. "
    "Synchronous.",
    responses=error_responses(404),
)
async def list_snapshots(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, params: ListParams, _: ViewerRead
) -> JSONResponse:
    body = await service.list_snapshots(
        lxd,
        name=name,
        project=project,
        query=params,
    )
    return lxd_answer(body)


@router.post(
    "",
    status_code=202,
    response_model=OperationRef,
    summary="Create a snapshot",
    description="`POST /1.0/instances/{name}/snapshots` `{name, stateful, expires_at}` (async). "
    "A taken name is a 409 before anything starts. 202 with the operation reference, or with "
    "`wait=true` the finished operation. Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404, 409)},
)
async def create_snapshot(
    name: InstanceName,
    body: SnapshotCreate,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.create_snapshot(
        lxd, name=name, project=project, body=body.model_dump(mode="json", exclude_none=True)
    )
    return await operation_answer(response, wait)


@router.get(
    "/{snapshot}",
    response_model=SnapshotPublic,
    summary="Get a snapshot",
    description="`GET /1.0/instances/{name}/snapshots/{snapshot}`. Role: viewer. Synchronous.",
    responses=error_responses(404),
)
async def get_snapshot(
    name: InstanceName, snapshot: SnapshotName, lxd: LXDDep, project: ProjectDep, _: ViewerRead
) -> JSONResponse:
    return lxd_answer(
        await service.get_snapshot(lxd, name=name, snapshot=snapshot, project=project)
    )


@router.patch(
    "/{snapshot}",
    status_code=202,
    response_model=OperationRef,
    summary="Rename a snapshot or change its expiry",
    description="`name`: `POST /1.0/instances/{name}/snapshots/{snapshot}` `{name}` (a rename, "
    "async; a taken name is a 409). `expires_at`: `PATCH` of the snapshot (async). With both, "
    "the expiry is changed first (waited for) and the answer is the rename's operation. Role: "
    "operator.",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404, 409)},
)
async def update_snapshot(
    name: InstanceName,
    snapshot: SnapshotName,
    body: SnapshotUpdate,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.update_snapshot(
        lxd,
        name=name,
        snapshot=snapshot,
        project=project,
        new_name=body.name,
        expires_at=body.expires_at.isoformat() if body.expires_at else None,
        timeout=wait.timeout,
    )
    return await operation_answer(response, wait)


@router.delete(
    "/{snapshot}",
    status_code=202,
    response_model=OperationRef,
    summary="Delete a snapshot",
    description="`DELETE /1.0/instances/{name}/snapshots/{snapshot}` (async). Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(404)},
)
async def delete_snapshot(
    name: InstanceName,
    snapshot: SnapshotName,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    user: OperatorUser,
) -> JSONResponse:
    response = await service.delete_snapshot(lxd, name=name, snapshot=snapshot, project=project)
    return await operation_answer(response, wait)


@router.post(
    "/{snapshot}/restore",
    status_code=202,
    response_model=OperationRef,
    summary="Restore a snapshot",
    description="`PUT /1.0/instances/{name}` `{restore: snapshot, stateful}` (async): the "
    "instance's filesystem and configuration go back to the snapshot; files written since are "
    "gone. An unknown snapshot is a 404. Below admin, the operator policy checks the config "
    "and devices the snapshot would bring back (403 `policy_violation`, fields "
    "`snapshot.config.*`/`snapshot.devices.*`). Role: operator.",
    responses={**ASYNC_RESPONSES, **error_responses(400, 404), **POLICY_RESPONSES},
)
async def restore_snapshot(
    name: InstanceName,
    snapshot: SnapshotName,
    lxd: LXDDep,
    project: ProjectDep,
    wait: WaitParams,
    settings: SettingsDep,
    user: OperatorUser,
    body: SnapshotRestore | None = None,
) -> JSONResponse:
    # No such snapshot: nothing to restore, and the restore below answers the 404 in its words.
    with contextlib.suppress(LXDNotFound):
        await policy.enforce_snapshot_restore(
            lxd, settings=settings, user=user, project=project, instance=name, snapshot=snapshot
        )
    response = await service.restore_snapshot(
        lxd,
        name=name,
        snapshot=snapshot,
        project=project,
        stateful=body.stateful if body else False,
    )
    return await operation_answer(response, wait)
