"""What the project routes ask of LXD.

LXD 5.0 quirks handled here:
* `PATCH /1.0/projects/<p>` replaces the whole `config` map (fixed after 5.21), which also
  drops the `features.*` keys: a PATCH is done as GET (with its ETag) + merge + PUT with
  `If-Match`, retried a few times when another writer got in between.
* Deleting a non-empty project is a 500 ("Only empty projects can be removed"); renaming one
  (or to a taken name, or a missing one) is a 202 whose operation fails later. These are
  checked first and answered as 404/409 before LXD is asked.
* The `default` project cannot be deleted or renamed (LXD: a raw 403): refused up front.
* LXD checks `If-Match` before it writes, not atomically with the write: two PUTs that carry
  the same ETag can both pass, and the second silently drops the first one's change. PATCHes
  through this process are therefore also serialized per project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.errors import ConflictError, LXDError, LXDNotFound, LXDPreconditionFailed, reword_not_found
from app.lxd import LXDClient, LXDResponse, edit_with_etag, lxd_path, one_edit_at_a_time
from app.services.listing import list_collection
from app.utils.pagination import ListQuery

# LXD's own project, whatever DEFAULT_PROJECT says: LXD refuses to delete or rename it.
LXD_DEFAULT_PROJECT = "default"
PATCH_ATTEMPTS = 5
# A project's own default profile does not make it "in use" for LXD's emptiness checks.
_IGNORED_USERS = ("/1.0/profiles/default",)


def _users(project: dict[str, Any]) -> list[str]:
    used_by = project.get("used_by") or []
    return [str(url) for url in used_by if not str(url).split("?", 1)[0].endswith(_IGNORED_USERS)]


def _in_use(name: str, users: list[str], action: str) -> ConflictError:
    shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
    return ConflictError(
        f"Project {name!r} is not empty and cannot be {action}; it is used by: {shown}",
        code="project_not_empty",
    )


def _protect_default(name: str, action: str) -> None:
    if name == LXD_DEFAULT_PROJECT:
        raise ConflictError(
            f"The default project cannot be {action}", code="default_project_protected"
        )


async def list_projects(
    lxd: LXDClient, *, query: ListQuery, keep: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """`keep`: only the projects (by name) it admits, paged after filtering."""
    return await list_collection(lxd, lxd_path("projects"), project=None, query=query, keep=keep)


async def get_project(lxd: LXDClient, *, name: str) -> tuple[dict[str, Any], str | None]:
    """The project and its ETag."""
    with reword_not_found("Project", name):
        response = await lxd.get(lxd_path("projects", name))
    return dict(response.metadata or {}), response.etag


async def get_project_state(lxd: LXDClient, *, name: str) -> dict[str, Any]:
    with reword_not_found("Project", name):
        response = await lxd.get(lxd_path("projects", name, "state"))
    return dict(response.metadata or {})


async def create_project(
    lxd: LXDClient, *, name: str, description: str, config: dict[str, str]
) -> tuple[dict[str, Any], str | None]:
    body = {"name": name, "description": description, "config": config}
    try:
        await lxd.post(lxd_path("projects"), json_body=body)
    except ConflictError as exc:
        raise ConflictError(f"Project {name!r} already exists") from exc
    return await get_project(lxd, name=name)


async def replace_project(
    lxd: LXDClient,
    *,
    name: str,
    description: str,
    config: dict[str, str],
    if_match: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """PUT: description and config replaced as given (`If-Match` passed on: 412 on mismatch)."""
    headers = {"If-Match": if_match} if if_match else None
    with reword_not_found("Project", name):
        await lxd.put(
            lxd_path("projects", name),
            json_body={"description": description, "config": config},
            headers=headers,
        )
    return await get_project(lxd, name=name)


def _merged(
    current: dict[str, Any], description: str | None, config: dict[str, str | None] | None
) -> dict[str, Any]:
    merged_config = dict(current.get("config") or {})
    for key, value in (config or {}).items():
        if value is None:
            merged_config.pop(key, None)
        else:
            merged_config[key] = value
    return {
        "description": current.get("description", "") if description is None else description,
        "config": merged_config,
    }


async def patch_project(
    lxd: LXDClient,
    *,
    name: str,
    description: str | None,
    config: dict[str, str | None] | None,
    if_match: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Merge `config` into the project's config on every LXD version (see module notes).

    With the client's `If-Match`, the write is conditional on exactly that version and a
    mismatch is the client's 412; without it, a concurrent writer only costs a retry.
    """
    async with one_edit_at_a_time("project", lxd.base_url, name):
        return await edit_with_etag(
            lambda: _patch_project(
                lxd, name=name, description=description, config=config, if_match=if_match
            ),
            # The client's own `If-Match` pins one version: its 412 is the answer, not a retry.
            # Out of attempts, LXD's last 412 is the answer.
            attempts=1 if if_match else PATCH_ATTEMPTS,
            gave_up=lambda last: last,
        )


async def _patch_project(
    lxd: LXDClient,
    *,
    name: str,
    description: str | None,
    config: dict[str, str | None] | None,
    if_match: str | None,
) -> tuple[dict[str, Any], str | None]:
    """One read, merge and conditional write (`patch_project` retries it)."""
    current, etag = await get_project(lxd, name=name)
    if if_match and etag and if_match.strip('"') != etag.strip('"'):
        raise LXDPreconditionFailed(f"Project {name!r} changed: its ETag is {etag}, not {if_match}")
    body = _merged(current, description, config)
    headers = {"If-Match": etag} if etag else None
    with reword_not_found("Project", name):
        await lxd.put(lxd_path("projects", name), json_body=body, headers=headers)
    return await get_project(lxd, name=name)


async def rename_project(lxd: LXDClient, *, name: str, new_name: str) -> LXDResponse:
    """Start the rename (LXD 5.0: an operation). Refused first: the default project, a
    missing project, a taken name, a project that is not empty."""
    _protect_default(name, "renamed")
    current, _ = await get_project(lxd, name=name)
    if new_name == name:
        raise ConflictError(f"Project {name!r} already has that name")
    try:
        await lxd.get(lxd_path("projects", new_name))
    except LXDNotFound:
        pass
    else:
        raise ConflictError(f"Project {new_name!r} already exists")
    users = _users(current)
    if users:
        raise _in_use(name, users, "renamed")
    return await lxd.post(lxd_path("projects", name), json_body={"name": new_name})


async def delete_project(lxd: LXDClient, *, name: str) -> None:
    _protect_default(name, "deleted")
    try:
        with reword_not_found("Project", name):
            await lxd.delete(lxd_path("projects", name))
    except LXDError as exc:
        # LXD 5.0: 500 "Only empty projects can be removed": say what is still in it.
        if "only empty projects" not in exc.detail.lower():
            raise
        current, _ = await get_project(lxd, name=name)
        raise _in_use(name, _users(current), "deleted") from exc
