"""Storage pools and custom volumes: CRUD, rename, resize, attach to and detach from instances.

LXD paths: `/1.0/storage-pools/{pool}` and `/1.0/storage-pools/{pool}/volumes/custom/{volume}`.
LXD 5.0 quirks handled here: a volume or pool in use is refused with a 400 (we answer 409 and
name the users); a bad size is a 500 (sizes are validated before LXD is called, and any size
refusal left is a 400); a pool create that names a missing source directory is a 500 "doesn't
exist" (a 400 here, not a 404).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, NoReturn

from app.errors import (
    BadRequestError,
    ConflictError,
    LXDBadRequest,
    LXDConflict,
    LXDError,
    LXDNotFound,
)
from app.lxd import LXDClient, lxd_path
from app.services.devices import (
    DeviceEdit,
    DeviceGuard,
    InstanceDevices,
    describe_users,
    edit_devices,
    free_name,
    pick_device,
)
from app.services.listing import ensure_project, list_collection
from app.utils.pagination import ListQuery

ALWAYS_THERE_PROJECT = "default"  # LXD's default project cannot be deleted
_IN_USE = re.compile(r"in use", re.I)
_EXISTS = re.compile(r"already exists", re.I)


# --- shared helpers -----------------------------------------------------------------------------
def raise_as_conflict_if_duplicate(exc: LXDError) -> NoReturn:
    """Re-raise `exc`, as a 409 when it says "already exists" (LXD 5.0 answers some duplicates
    with a 400 or a 500)."""
    if not isinstance(exc, LXDConflict) and _EXISTS.search(exc.detail):
        raise LXDConflict(exc.detail) from exc
    raise exc


def is_in_use(exc: LXDError) -> bool:
    return isinstance(exc, LXDBadRequest | LXDConflict) and bool(_IN_USE.search(exc.detail))


def _pool_path(pool: str, *rest: str) -> str:
    return lxd_path("storage-pools", pool, *rest)


def _volume_path(pool: str, volume: str, *rest: str) -> str:
    return lxd_path("storage-pools", pool, "volumes", "custom", volume, *rest)


async def _pool_project(lxd: LXDClient, project: str) -> None:
    # Pools are global in LXD, which ignores `project` on them: still refuse an unknown one.
    if project != ALWAYS_THERE_PROJECT:
        await ensure_project(lxd, project)


def _patch_body(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


# --- pools --------------------------------------------------------------------------------------
async def list_pools(
    lxd: LXDClient,
    *,
    project: str,
    query: ListQuery,
) -> dict[str, Any]:
    await _pool_project(lxd, project)
    return await list_collection(
        lxd,
        lxd_path("storage-pools"),
        project=project,
        query=query,
    )


async def get_pool(lxd: LXDClient, *, project: str, pool: str) -> tuple[dict[str, Any], str | None]:
    await _pool_project(lxd, project)
    reply = await lxd.get(_pool_path(pool), project=project)
    return dict(reply.metadata or {}), reply.etag


async def create_pool(lxd: LXDClient, *, project: str, body: dict[str, Any]) -> dict[str, Any]:
    await _pool_project(lxd, project)
    try:
        reply = await lxd.post(lxd_path("storage-pools"), project=project, json_body=body)
        await reply.wait()
    except LXDNotFound as exc:
        # e.g. "Source path '/x' doesn't exist" (a 500 on LXD 5.0): a mistake in the request.
        raise BadRequestError(exc.detail) from exc
    except LXDError as exc:
        raise_as_conflict_if_duplicate(exc)
    pool, _ = await get_pool(lxd, project=project, pool=body["name"])
    return pool


async def update_pool(
    lxd: LXDClient,
    *,
    project: str,
    pool: str,
    body: dict[str, Any],
    replace: bool,
    if_match: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """PUT (`replace`) or PATCH the pool; `if_match` is passed to LXD as `If-Match`."""
    await _pool_project(lxd, project)
    headers = {"If-Match": if_match} if if_match else None
    send = lxd.put if replace else lxd.patch
    payload = body if replace else _patch_body(body)
    reply = await send(_pool_path(pool), project=project, json_body=payload, headers=headers)
    await reply.wait()
    return await get_pool(lxd, project=project, pool=pool)


async def delete_pool(lxd: LXDClient, *, project: str, pool: str) -> None:
    await _pool_project(lxd, project)
    try:
        reply = await lxd.delete(_pool_path(pool), project=project)
        await reply.wait()
    except LXDError as exc:
        if not is_in_use(exc):
            raise
        meta, _ = await get_pool(lxd, project=project, pool=pool)
        users = describe_users(meta.get("used_by"))
        raise ConflictError(f"Storage pool {pool!r} is in use by {users}", code="in_use") from exc


# --- volumes ------------------------------------------------------------------------------------
async def list_volumes(
    lxd: LXDClient,
    *,
    project: str,
    pool: str,
    query: ListQuery,
) -> dict[str, Any]:
    return await list_collection(
        lxd,
        _pool_path(pool, "volumes", "custom"),
        project=project,
        query=query,
    )


async def get_volume(
    lxd: LXDClient, *, project: str, pool: str, volume: str
) -> tuple[dict[str, Any], str | None]:
    reply = await lxd.get(_volume_path(pool, volume), project=project)
    return dict(reply.metadata or {}), reply.etag


async def create_volume(
    lxd: LXDClient, *, project: str, pool: str, body: dict[str, Any]
) -> dict[str, Any]:
    payload = {**body, "type": "custom"}
    try:
        reply = await lxd.post(
            _pool_path(pool, "volumes", "custom"), project=project, json_body=payload
        )
        await reply.wait()
    except LXDError as exc:
        raise_as_conflict_if_duplicate(exc)
    volume, _ = await get_volume(lxd, project=project, pool=pool, volume=body["name"])
    return volume


async def update_volume(
    lxd: LXDClient,
    *,
    project: str,
    pool: str,
    volume: str,
    body: dict[str, Any],
    replace: bool,
    if_match: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    headers = {"If-Match": if_match} if if_match else None
    send = lxd.put if replace else lxd.patch
    payload = body if replace else _patch_body(body)
    reply = await send(
        _volume_path(pool, volume), project=project, json_body=payload, headers=headers
    )
    await reply.wait()
    return await get_volume(lxd, project=project, pool=pool, volume=volume)


async def resize_volume(
    lxd: LXDClient, *, project: str, pool: str, volume: str, size: str
) -> dict[str, Any]:
    meta, _ = await update_volume(
        lxd,
        project=project,
        pool=pool,
        volume=volume,
        body={"config": {"size": size}},
        replace=False,
    )
    return meta


async def rename_volume(
    lxd: LXDClient, *, project: str, pool: str, volume: str, new_name: str
) -> dict[str, Any]:
    try:
        reply = await lxd.post(
            _volume_path(pool, volume), project=project, json_body={"name": new_name}
        )
        await reply.wait()
    except LXDError as exc:
        if is_in_use(exc):
            await _raise_volume_in_use(lxd, project=project, pool=pool, volume=volume, cause=exc)
        raise_as_conflict_if_duplicate(exc)
    meta, _ = await get_volume(lxd, project=project, pool=pool, volume=new_name)
    return meta


async def delete_volume(lxd: LXDClient, *, project: str, pool: str, volume: str) -> None:
    try:
        reply = await lxd.delete(_volume_path(pool, volume), project=project)
        await reply.wait()
    except LXDError as exc:
        if not is_in_use(exc):
            raise
        await _raise_volume_in_use(lxd, project=project, pool=pool, volume=volume, cause=exc)


async def _raise_volume_in_use(
    lxd: LXDClient, *, project: str, pool: str, volume: str, cause: LXDError
) -> None:
    meta, _ = await get_volume(lxd, project=project, pool=pool, volume=volume)
    users = describe_users(meta.get("used_by"))
    raise ConflictError(
        f"Volume {volume!r} in pool {pool!r} is in use by {users} ({cause.detail})",
        code="in_use",
    ) from cause


# --- attach / detach ----------------------------------------------------------------------------
def _uses_volume(device: dict[str, str], pool: str, volume: str) -> bool:
    return (
        device.get("type") == "disk"
        and device.get("pool") == pool
        and device.get("source") == volume
    )


def _same_path(a: str | None, b: str) -> bool:
    return a is not None and posixpath.normpath(a) == posixpath.normpath(b)


async def attach_volume(
    lxd: LXDClient,
    *,
    project: str,
    pool: str,
    volume: str,
    instance: str,
    path: str,
    device: str | None,
    guard: DeviceGuard | None = None,
) -> tuple[str, dict[str, str]]:
    """Add a disk device for the volume to the instance; return (device name, device).
    `guard` sees the device before anything is written."""
    await get_volume(lxd, project=project, pool=pool, volume=volume)  # 404 before any edit

    def plan(current: InstanceDevices) -> DeviceEdit:
        for name, dev in current.expanded.items():
            if _uses_volume(dev, pool, volume):
                raise ConflictError(
                    f"Volume {volume!r} is already attached to {instance!r} as device {name!r}",
                    code="already_attached",
                )
            if dev.get("type") == "disk" and _same_path(dev.get("path"), path):
                raise ConflictError(
                    f"Path {path!r} in {instance!r} is already used by device {name!r}"
                )
        if device is not None and device in current.taken_names():
            raise ConflictError(f"Instance {instance!r} already has a device named {device!r}")
        name = device or free_name(volume, current.taken_names(), fallback="volume")
        config = {"type": "disk", "pool": pool, "source": volume, "path": path}
        if guard is not None:
            guard(name, config)
        return DeviceEdit(add={name: config})

    edit = await edit_devices(lxd, project=project, instance=instance, plan=plan)
    ((name, config),) = edit.add.items()
    return name, config


async def detach_volume(
    lxd: LXDClient,
    *,
    project: str,
    pool: str,
    volume: str,
    instance: str,
    device: str | None,
) -> tuple[str, dict[str, str]]:
    """Remove the volume's disk device from the instance; return (device name, device)."""
    removed: dict[str, dict[str, str]] = {}

    def plan(current: InstanceDevices) -> DeviceEdit:
        name = pick_device(
            current,
            device=device,
            matches=lambda dev: _uses_volume(dev, pool, volume),
            what=f"Volume {volume!r} (pool {pool!r})",
        )
        removed.clear()
        removed[name] = current.local[name]
        return DeviceEdit(remove=frozenset({name}))

    await edit_devices(lxd, project=project, instance=instance, plan=plan)
    ((name, config),) = removed.items()
    return name, config
