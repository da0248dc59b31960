"""Profiles: list, get, create, PUT/PATCH (with `If-Match`), rename and delete.

LXD 5.0.2 answers, seen live, and what they become here:
* a duplicate create: 500 "Error inserting ... The profile already exists" -> 409;
* delete or rename of `default`: 403 "The "default" profile cannot be ..." -> 409
  `default_profile_protected`, refused before LXD is asked (every project has its own);
* delete of a profile in use: 500 "Profile is currently in use" -> 409 `in_use`, with the
  instances that use it in the body;
* rename to a taken name: 500 "Name ... already in use" -> 409; rename of a missing profile:
  500 "Query affected 0 rows instead of 1" -> 404; a profile in use can be renamed (its
  instances follow);
* a device LXD cannot validate: 404 ("Failed to load network ...") or 500 ("Unsupported
  device type") "Device validation failed ..." -> 400;
* an unknown project: 404 "Failed loading project ..." -> 404 "Project ... not found".
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit

from app.errors import (
    ConflictError,
    LXDBadRequest,
    LXDConflict,
    LXDError,
    reword_not_found,
)
from app.lxd import LXDClient, lxd_path
from app.services.devices import describe_users
from app.services.listing import list_collection
from app.services.storage import is_in_use
from app.utils.pagination import ListQuery

# LXD refuses to delete or rename the `default` profile, in every project.
DEFAULT_PROFILE = "default"
_INVALID_DEVICE = "device validation failed"


class ProfileInUseError(ConflictError):
    """A profile that instances still use: 409 with the instances in `instances`."""

    code = "in_use"

    def __init__(self, name: str, used_by: list[str]) -> None:
        super().__init__(f"Profile {name!r} is in use by {describe_users(used_by)}")
        self.body_extra = {"instances": instances_of(used_by)}


def instances_of(used_by: list[str]) -> list[dict[str, str]]:
    """`/1.0/instances/web1?project=p` -> `{"name": "web1", "project": "p"}`, instances only
    (LXD names no project for the default one)."""
    found = []
    for url in used_by:
        parts = urlsplit(str(url))
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if len(segments) == 3 and segments[1] == "instances":
            project = parse_qs(parts.query).get("project", ["default"])[0]
            found.append({"name": segments[2], "project": project})
    return found


def _path(name: str) -> str:
    return lxd_path("profiles", name)


def _protect_default(name: str, action: str) -> None:
    if name == DEFAULT_PROFILE:
        raise ConflictError(
            f"The default profile cannot be {action}", code="default_profile_protected"
        )


def _refused_input(exc: LXDError) -> None:
    """A device LXD could not validate is the client's mistake, whatever status LXD gave."""
    if _INVALID_DEVICE in exc.detail.lower():
        raise LXDBadRequest(exc.detail) from exc


def _not_found(name: str, project: str) -> AbstractContextManager[None]:
    """A 404 names the profile, or the project when LXD says that is what is missing."""
    return reword_not_found("Profile", name, or_project=project)


async def list_profiles(lxd: LXDClient, *, project: str, query: ListQuery) -> dict[str, Any]:
    with reword_not_found("Project", project):
        return await list_collection(lxd, lxd_path("profiles"), project=project, query=query)


async def get_profile(
    lxd: LXDClient, *, project: str, name: str
) -> tuple[dict[str, Any], str | None]:
    """The profile and its ETag."""
    with _not_found(name, project):
        reply = await lxd.get(_path(name), project=project)
    return dict(reply.metadata or {}), reply.etag


async def create_profile(
    lxd: LXDClient, *, project: str, body: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    name = body["name"]
    try:
        reply = await lxd.post(lxd_path("profiles"), project=project, json_body=body)
        await reply.wait()
    except LXDConflict as exc:
        raise LXDConflict(f"Profile {name!r} already exists") from exc
    except LXDError as exc:
        _refused_input(exc)
        with _not_found(name, project):
            raise
    return await get_profile(lxd, project=project, name=name)


async def update_profile(
    lxd: LXDClient,
    *,
    project: str,
    name: str,
    body: dict[str, Any],
    replace: bool,
    if_match: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """PUT (`replace`) or PATCH; `if_match` is passed to LXD as `If-Match` (412 on mismatch)."""
    headers = {"If-Match": if_match} if if_match else None
    send = lxd.put if replace else lxd.patch
    try:
        reply = await send(_path(name), project=project, json_body=body, headers=headers)
        await reply.wait()
    except LXDError as exc:
        _refused_input(exc)
        with _not_found(name, project):
            raise
    return await get_profile(lxd, project=project, name=name)


async def rename_profile(
    lxd: LXDClient, *, project: str, name: str, new_name: str
) -> tuple[dict[str, Any], str | None]:
    _protect_default(name, "renamed")
    try:
        reply = await lxd.post(_path(name), project=project, json_body={"name": new_name})
        await reply.wait()
    except LXDError as exc:
        await get_profile(lxd, project=project, name=name)  # a missing profile is a 404
        if isinstance(exc, LXDConflict):
            raise LXDConflict(f"Profile {new_name!r} already exists") from exc
        raise
    return await get_profile(lxd, project=project, name=new_name)


async def delete_profile(lxd: LXDClient, *, project: str, name: str) -> None:
    _protect_default(name, "deleted")
    try:
        with _not_found(name, project):
            reply = await lxd.delete(_path(name), project=project)
            await reply.wait()
    except LXDError as exc:
        if not is_in_use(exc):
            raise
        await _raise_in_use(lxd, project=project, name=name, cause=exc)


async def _raise_in_use(lxd: LXDClient, *, project: str, name: str, cause: LXDError) -> NoReturn:
    meta, _ = await get_profile(lxd, project=project, name=name)
    raise ProfileInUseError(name, [str(u) for u in meta.get("used_by") or []]) from cause
