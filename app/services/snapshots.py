"""Instance snapshots: list, get, create, rename/expiry, delete, restore (all async in LXD)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from app.errors import ConflictError, LXDNotFound, reword_not_found
from app.lxd import LXDClient, LXDResponse, lxd_path
from app.services.listing import list_collection
from app.utils.pagination import ListQuery


def _not_found(name: str, snapshot: str | None, project: str) -> AbstractContextManager[None]:
    if snapshot is None:
        return reword_not_found("Instance", name, in_project=project)
    return reword_not_found("Snapshot", snapshot, of=f"instance {name!r}", in_project=project)


def _path(name: str, snapshot: str) -> str:
    return lxd_path("instances", name, "snapshots", snapshot)


async def list_snapshots(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    query: ListQuery,
) -> dict[str, Any]:
    with _not_found(name, None, project):
        return await list_collection(
            lxd,
            lxd_path("instances", name, "snapshots"),
            project=project,
            query=query,
        )


async def get_snapshot(lxd: LXDClient, *, name: str, snapshot: str, project: str) -> dict[str, Any]:
    with _not_found(name, snapshot, project):
        response = await lxd.get(_path(name, snapshot), project=project)
    return dict(response.metadata or {})


async def _snapshot_exists(lxd: LXDClient, *, name: str, snapshot: str, project: str) -> bool:
    try:
        await lxd.get(_path(name, snapshot), project=project)
    except LXDNotFound:
        return False
    return True


async def create_snapshot(
    lxd: LXDClient, *, name: str, project: str, body: dict[str, Any]
) -> LXDResponse:
    """POST /1.0/instances/{name}/snapshots. LXD 5.0 accepts a duplicate name (202) and only
    fails the operation: a taken name is a 409 here, before anything starts."""
    snapshot = str(body["name"])
    if await _snapshot_exists(lxd, name=name, snapshot=snapshot, project=project):
        raise ConflictError(f"Snapshot {snapshot!r} of instance {name!r} already exists")
    with _not_found(name, None, project):
        return await lxd.post(
            lxd_path("instances", name, "snapshots"), project=project, json_body=body
        )


async def update_snapshot(
    lxd: LXDClient,
    *,
    name: str,
    snapshot: str,
    project: str,
    new_name: str | None,
    expires_at: str | None,
    timeout: int,
) -> LXDResponse:
    """Change the expiry (LXD PATCH, async) and/or rename (LXD POST {name}, async).

    With both, the expiry change is waited for (at most `timeout` s) before the rename starts,
    and the answer is the rename's operation."""
    await get_snapshot(lxd, name=name, snapshot=snapshot, project=project)
    renaming = new_name is not None and new_name != snapshot
    if renaming and await _snapshot_exists(lxd, name=name, snapshot=str(new_name), project=project):
        raise ConflictError(f"Snapshot {new_name!r} of instance {name!r} already exists")
    response: LXDResponse | None = None
    if expires_at is not None:
        response = await lxd.patch(
            _path(name, snapshot), project=project, json_body={"expires_at": expires_at}
        )
        if renaming:
            # The rename starts only once the expiry change is done.
            await response.wait(timeout, what=f"Changing the expiry of {snapshot!r}")
    if renaming or response is None:
        response = await lxd.post(
            _path(name, snapshot), project=project, json_body={"name": new_name or snapshot}
        )
    return response


async def delete_snapshot(lxd: LXDClient, *, name: str, snapshot: str, project: str) -> LXDResponse:
    with _not_found(name, snapshot, project):
        return await lxd.delete(_path(name, snapshot), project=project)


async def restore_snapshot(
    lxd: LXDClient, *, name: str, snapshot: str, project: str, stateful: bool
) -> LXDResponse:
    """PUT /1.0/instances/{name} {"restore": snapshot} (async). The snapshot is checked first:
    LXD would only fail the operation."""
    await get_snapshot(lxd, name=name, snapshot=snapshot, project=project)
    return await lxd.put(
        lxd_path("instances", name),
        project=project,
        json_body={"restore": snapshot, "stateful": stateful},
    )
