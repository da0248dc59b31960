"""What the instance routes ask of LXD: list, get, create, update, rename, delete, state, logs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.errors import (
    ConflictError,
    LXDBadRequest,
    LXDError,
    LXDNotFound,
    NotFoundError,
    reword_not_found,
)
from app.lxd import (
    Download,
    LXDClient,
    LXDResponse,
    lxd_path,
    name_from_url,
    open_download,
)
from app.services.listing import ensure_project, list_collection, read_list
from app.services.readmodel import ReadModel
from app.utils.pagination import ListQuery, paginate

# Not one of LXD's log files (LXD 5.0 answers 400 "log file name ... not valid").
_LOG_NAME_REFUSED = "not valid"
# LXD 5.0.2 serves the console log once per boot; later reads fail with this (a 500).
_CONSOLE_LOG_GONE = "no such file"


async def list_instances(
    lxd: LXDClient,
    *,
    project: str,
    query: ListQuery,
    instance_type: str | None = None,
    model: ReadModel | None = None,
) -> tuple[dict[str, Any], int | None]:
    """A page of the project's instances, and the read model's age when it answered (None:
    LXD did). The model answers everything but `filter` (LXD's own language)."""
    if model is not None and not query.filter:

        async def fetch() -> list[Any]:
            return await read_list(lxd, lxd_path("instances"), project=project)

        snapshot = await model.instances(project, fetch)
        if snapshot is not None:
            items: list[Any] = [
                item
                for item in snapshot.items
                if instance_type is None or item.get("type") == instance_type
            ]
            if not query.expand:
                items = [item["name"] for item in items]
            return paginate(items, limit=query.limit, offset=query.offset), snapshot.age
    page = await list_collection(
        lxd,
        lxd_path("instances"),
        project=project,
        query=query,
        params={"instance-type": instance_type},
    )
    return page, None


async def get_instance(lxd: LXDClient, *, name: str, project: str) -> tuple[dict[str, Any], str]:
    """The instance and its ETag (for a later `If-Match`), from LXD."""
    response = await _get(lxd, name, project=project)
    return dict(response.metadata or {}), response.etag or ""


async def read_instance(
    lxd: LXDClient, *, name: str, project: str, model: ReadModel | None
) -> tuple[dict[str, Any], str, int | None]:
    """The instance, its ETag and the read model's age when it answered (None: LXD did)."""
    if model is not None:

        async def fetch() -> list[Any]:
            return await read_list(lxd, lxd_path("instances"), project=project)

        found = await model.instance(project, name, fetch)
        if found is not None:
            return found
    instance, etag = await get_instance(lxd, name=name, project=project)
    return instance, etag, None


async def _get(lxd: LXDClient, name: str, *segments: str, project: str) -> LXDResponse:
    with reword_not_found("Instance", name, in_project=project):
        return await lxd.get(lxd_path("instances", name, *segments), project=project)


async def get_state(lxd: LXDClient, *, name: str, project: str) -> dict[str, Any]:
    response = await _get(lxd, name, "state", project=project)
    return dict(response.metadata or {})


async def _exists(lxd: LXDClient, *, name: str, project: str) -> bool:
    try:
        await lxd.get(lxd_path("instances", name), project=project)
    except LXDNotFound:
        return False
    return True


async def _refuse_duplicate(lxd: LXDClient, *, name: str, project: str) -> None:
    # LXD 5.0 accepts a duplicate create or rename (202) and only fails the operation: check first.
    if await _exists(lxd, name=name, project=project):
        raise ConflictError(f"Instance {name!r} already exists in project {project!r}")
    await ensure_project(lxd, project)


async def copy_source(lxd: LXDClient, source: Mapping[str, Any], *, project: str) -> dict[str, Any]:
    """The instance (or `instance/snapshot`) a copy starts from, as LXD has it (404 if gone)."""
    name = str(source.get("source") or "")
    in_project = str(source.get("project") or project)
    instance, _, snapshot = name.partition("/")
    path = (
        lxd_path("instances", instance, "snapshots", snapshot)
        if snapshot
        else lxd_path("instances", instance)
    )
    with reword_not_found("Copy source", name, in_project=in_project):
        reply = await lxd.get(path, project=in_project)
    return dict(reply.metadata or {})


async def create_instance(
    lxd: LXDClient, *, project: str, body: dict[str, Any], start: bool, timeout: int
) -> LXDResponse:
    """POST /1.0/instances. LXD 5.0 has no "create and start" (it ignores a `start` key), so with
    `start` this waits for the creation (at most `timeout` s) and returns the start operation,
    as `lxc launch` does."""
    await _refuse_duplicate(lxd, name=str(body["name"]), project=project)
    source = body.get("source") or {}
    if source.get("type") == "copy" and "profiles" not in body:
        # LXD 5.0 gives a copy sent without `profiles` none at all, and then no root disk
        # ("No root device could be found"). `lxc copy` sends the source's: so do we.
        copied = await copy_source(lxd, source, project=project)
        body = {**body, "profiles": copied.get("profiles") or []}
    response = await lxd.post(lxd_path("instances"), project=project, json_body=body)
    if not start:
        return response
    await response.wait(timeout, what=f"Creating {body['name']!r}")
    return await change_state(lxd, name=str(body["name"]), project=project, action="start")


async def update_instance(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    body: dict[str, Any],
    if_match: str | None,
    replace: bool,
) -> LXDResponse:
    """PUT (replace, async in LXD) or PATCH (merge, sync) with LXD's `If-Match` check (412)."""
    path = lxd_path("instances", name)
    if replace:
        # LXD refuses a PUT that drops its own `volatile.*` keys ("Volatile idmap keys can't be
        # deleted by the user"): they are LXD's state, not the client's config, so keep them.
        # Our read's ETag guards the copy when the client sent no `If-Match` of its own.
        current, etag = await get_instance(lxd, name=name, project=project)
        config = dict(body.get("config") or {})
        for key, value in (current.get("config") or {}).items():
            if key.startswith("volatile.") and key not in config:
                config[key] = value
        body = {**body, "config": config}
        if_match = if_match or etag or None
    headers = {"If-Match": if_match} if if_match else None
    with reword_not_found("Instance", name, in_project=project):
        if replace:
            return await lxd.put(path, project=project, json_body=body, headers=headers)
        return await lxd.patch(path, project=project, json_body=body, headers=headers)


async def rename_instance(lxd: LXDClient, *, name: str, project: str, new_name: str) -> LXDResponse:
    current, _ = await get_instance(lxd, name=name, project=project)
    if current.get("status") not in {None, "Stopped"}:
        raise ConflictError(f"Instance {name!r} is {current.get('status')}: stop it to rename it")
    await _refuse_duplicate(lxd, name=new_name, project=project)
    return await lxd.post(
        lxd_path("instances", name), project=project, json_body={"name": new_name}
    )


async def delete_instance(
    lxd: LXDClient, *, name: str, project: str, force: bool, timeout: int
) -> LXDResponse:
    """DELETE; with `force`, a hard stop first (waited for, at most `timeout` s)."""
    if force:
        try:
            stop = await change_state(lxd, name=name, project=project, action="stop", force=True)
            await stop.wait(timeout, what=f"Stopping {name!r}")
        except LXDBadRequest:
            pass  # "already stopped": nothing to stop
    try:
        with reword_not_found("Instance", name, in_project=project):
            return await lxd.delete(lxd_path("instances", name), project=project)
    except LXDBadRequest as exc:
        if "running" in exc.detail.lower():
            raise ConflictError(
                f"Instance {name!r} is running: stop it first, or delete with ?force=true"
            ) from exc
        raise


async def change_state(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    action: str,
    force: bool = False,
    timeout: int = -1,
    stateful: bool = False,
) -> LXDResponse:
    """PUT /1.0/instances/{name}/state (async). An impossible transition fails in the operation
    with LXD's reason ("The instance is already stopped")."""
    body = {"action": action, "force": force, "timeout": timeout, "stateful": stateful}
    with reword_not_found("Instance", name, in_project=project):
        return await lxd.put(lxd_path("instances", name, "state"), project=project, json_body=body)


# A failed transition's reasons, as LXD 5.0 words them inside the operation ("The container
# isn't running", "The instance is already stopped"): the client asked for the impossible.
_TRANSITION_REFUSED = re.compile(
    r"isn't running|is not running|already (running|stopped|frozen)|not frozen|isn't frozen",
    re.IGNORECASE,
)


def transition_error(exc: LXDError) -> LXDError:
    """A state change LXD refused for the instance's state is a 400 with LXD's reason (the
    generic mapping leaves some of these wordings as an LXD failure, 502)."""
    if type(exc) is LXDError and _TRANSITION_REFUSED.search(exc.detail):
        return LXDBadRequest(exc.detail)
    return exc


# --- logs -------------------------------------------------------------------------------------
async def list_logs(
    lxd: LXDClient, *, name: str, project: str, limit: int | None, offset: int
) -> dict[str, Any]:
    response = await _get(lxd, name, "logs", project=project)
    names = [name_from_url(str(url)) for url in response.metadata or []]
    return paginate(sorted(names), limit=limit, offset=offset)


async def open_log(lxd: LXDClient, *, name: str, project: str, file: str) -> Download:
    """Stream one log file (`/1.0/instances/{name}/logs/{file}`)."""
    try:
        return await open_download(lxd, lxd_path("instances", name, "logs", file), project=project)
    except LXDBadRequest as exc:
        if _LOG_NAME_REFUSED in exc.detail:
            raise NotFoundError(f"Instance {name!r} has no log file {file!r}") from exc
        raise
    except LXDNotFound as exc:
        # The instance, or the file: ask which, to say it.
        await get_instance(lxd, name=name, project=project)
        raise NotFoundError(f"Instance {name!r} has no log file {file!r}") from exc


async def open_console_log(lxd: LXDClient, *, name: str, project: str) -> Download | None:
    """The console log as a stream, or None when LXD has nothing to give (see above)."""
    try:
        with reword_not_found("Instance", name, in_project=project):
            return await open_download(lxd, lxd_path("instances", name, "console"), project=project)
    except LXDError as exc:
        if _CONSOLE_LOG_GONE in exc.detail:
            return None
        raise
