"""What the image routes ask of LXD: list, get (by fingerprint or a unique prefix), delete,
copy from another image server, and aliases (list, get, create, update, rename, delete).

LXD resolves a fingerprint prefix itself and answers an ambiguous one with a 500 ("More than
one image matches"): that is reported as a 409 that says so. LXD 5.0's alias PATCH hangs for
20 s and then fails: an alias update is a GET + PUT with `If-Match` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.core.config import Settings
from app.errors import (
    BadRequestError,
    ConflictError,
    LXDError,
    LXDNotFound,
    LXDPreconditionFailed,
    not_found_detail,
    reword_not_found,
)
from app.lxd import LXDClient, LXDResponse, edit_with_etag, lxd_path, one_edit_at_a_time
from app.services.listing import list_collection
from app.utils.pagination import ListQuery

AMBIGUOUS_MESSAGE = "more than one image matches"


@dataclass(frozen=True, slots=True)
class ImageServer:
    url: str
    protocol: str


def image_remotes(settings: Settings) -> dict[str, ImageServer]:
    """The well-known servers `"remote": "<name>"` stands for, as `lxc` names them."""
    return {
        "ubuntu": ImageServer(
            settings.IMAGE_REMOTE_UBUNTU_URL, settings.IMAGE_REMOTE_UBUNTU_PROTOCOL
        ),
        "images": ImageServer(
            settings.IMAGE_REMOTE_IMAGES_URL, settings.IMAGE_REMOTE_IMAGES_PROTOCOL
        ),
    }


def ambiguous(exc: LXDError, prefix: str) -> ConflictError | None:
    """The 409 for LXD's "More than one image matches", or None for any other error."""
    if AMBIGUOUS_MESSAGE not in exc.detail.lower():
        return None
    return ConflictError(
        f"Fingerprint prefix {prefix!r} matches more than one image; give more characters",
        code="ambiguous_fingerprint",
    )


async def list_images(
    lxd: LXDClient,
    *,
    project: str,
    query: ListQuery,
) -> dict[str, Any]:
    with reword_not_found("Project", project):
        return await list_collection(
            lxd,
            lxd_path("images"),
            project=project,
            query=query,
        )


async def get_image(lxd: LXDClient, *, project: str, fingerprint: str) -> dict[str, Any]:
    try:
        with reword_not_found("Image", fingerprint, in_project=project, or_project=project):
            response = await lxd.get(lxd_path("images", fingerprint), project=project)
    except LXDNotFound:
        raise
    except LXDError as exc:
        raise ambiguous(exc, fingerprint) or exc from exc
    return dict(response.metadata or {})


async def delete_image(lxd: LXDClient, *, project: str, fingerprint: str) -> LXDResponse:
    """Delete the one image `fingerprint` (or a unique prefix) names: resolved first, so that
    the image deleted is exactly the one a GET would show (an LXD operation)."""
    image = await get_image(lxd, project=project, fingerprint=fingerprint)
    full = str(image.get("fingerprint") or fingerprint)
    with reword_not_found("Image", fingerprint, in_project=project):
        return await lxd.delete(lxd_path("images", full), project=project)


async def alias_exists(lxd: LXDClient, *, project: str, name: str) -> bool:
    try:
        await lxd.get(lxd_path("images", "aliases", name), project=project)
    except LXDNotFound:
        return False
    return True


def copy_body(
    source: Mapping[str, Any],
    *,
    remotes: Mapping[str, ImageServer],
    aliases: list[str],
    auto_update: bool,
    public: bool,
) -> dict[str, Any]:
    """LXD's `POST /1.0/images` body for a pull from `source` (a validated ImageCopySource)."""
    remote = source.get("remote")
    if remote is not None:
        server = remotes[remote]
        url, protocol = server.url, source.get("protocol") or server.protocol
    else:
        url, protocol = source["server"], source["protocol"]
    lxd_source: dict[str, Any] = {
        "type": "image",
        "mode": "pull",
        "server": url,
        "protocol": protocol,
    }
    if source.get("alias") is not None:
        lxd_source["alias"] = source["alias"]
    else:
        lxd_source["fingerprint"] = source["fingerprint"]
    if source.get("certificate"):
        lxd_source["certificate"] = source["certificate"]
    return {
        "source": lxd_source,
        "aliases": [{"name": name} for name in aliases],
        "auto_update": auto_update,
        "public": public,
    }


async def copy_image(
    lxd: LXDClient,
    *,
    project: str,
    source: Mapping[str, Any],
    remotes: Mapping[str, ImageServer],
    aliases: list[str],
    auto_update: bool,
    public: bool,
) -> LXDResponse:
    """Start a copy from another server (an LXD operation). A local alias that is taken is a
    409 now, not an operation that fails later. An unreachable server still starts the
    operation (LXD 5.0), which then fails with LXD's reason."""
    if source.get("remote") is not None:
        server = remotes[source["remote"]]
        if source.get("protocol") and source["protocol"] != server.protocol:
            raise BadRequestError(
                f"Remote {source['remote']!r} speaks {server.protocol!r}, "
                f"not {source['protocol']!r}; leave protocol out"
            )
    for name in aliases:
        if await alias_exists(lxd, project=project, name=name):
            raise ConflictError(f"Image alias {name!r} already exists in project {project!r}")
    body = copy_body(
        source, remotes=remotes, aliases=aliases, auto_update=auto_update, public=public
    )
    with reword_not_found("Project", project):
        return await lxd.post(lxd_path("images"), project=project, json_body=body)


# --- aliases ---------------------------------------------------------------------------------
ALIAS_UPDATE_ATTEMPTS = 5


def _alias_not_found(name: str, project: str) -> LXDNotFound:
    return LXDNotFound(not_found_detail("Image alias", name, in_project=project))


def _target_not_found(target: str, project: str) -> LXDNotFound:
    return LXDNotFound(f"Image {target!r} (the alias target) not found in project {project!r}")


def _alias_names(items: list[Any]) -> list[str]:
    return [str(item.get("name", "")) for item in items if isinstance(item, dict)]


async def list_aliases(
    lxd: LXDClient,
    *,
    project: str,
    query: ListQuery,
) -> dict[str, Any]:
    """Always read with `recursion=1`: LXD's names-only list double-encodes names that hold a
    `/` (`a%252Fb`), the objects carry them as they are."""
    with reword_not_found("Project", project):
        page = await list_collection(
            lxd,
            lxd_path("images", "aliases"),
            project=project,
            query=replace(query, expand=True),
        )
    if not query.expand:
        page["items"] = _alias_names(page["items"])
    return page


async def get_alias(
    lxd: LXDClient, *, project: str, name: str
) -> tuple[dict[str, Any], str | None]:
    """The alias and its ETag."""
    with reword_not_found("Image alias", name, in_project=project, or_project=project):
        response = await lxd.get(lxd_path("images", "aliases", name), project=project)
    return dict(response.metadata or {}), response.etag


def _target_error(exc: LXDError, *, target: str, name: str, project: str) -> LXDError | None:
    """Name the right missing thing in a 404 of a write that carries a target image."""
    if isinstance(exc, LXDNotFound):
        detail = exc.detail.lower()
        if "alias" in detail:
            return _alias_not_found(name, project)
        if "project" in detail:
            return LXDNotFound(f"Project {project!r} not found")
        return _target_not_found(target, project)
    return None


async def create_alias(
    lxd: LXDClient, *, project: str, name: str, target: str, description: str
) -> tuple[dict[str, Any], str | None]:
    body = {"name": name, "target": target, "description": description}
    try:
        await lxd.post(lxd_path("images", "aliases"), project=project, json_body=body)
    except ConflictError as exc:
        raise ConflictError(f"Image alias {name!r} already exists in project {project!r}") from exc
    except LXDError as exc:
        mapped = ambiguous(exc, target) or _target_error(
            exc, target=target, name=name, project=project
        )
        if mapped is None:
            raise
        raise mapped from exc
    return await get_alias(lxd, project=project, name=name)


async def update_alias(
    lxd: LXDClient,
    *,
    project: str,
    name: str,
    target: str | None,
    description: str | None,
) -> tuple[dict[str, Any], str | None]:
    """GET + PUT with `If-Match` (LXD 5.0's PATCH on aliases hangs), retried if another
    writer changed the alias in between."""

    async def attempt() -> tuple[dict[str, Any], str | None]:
        current, etag = await get_alias(lxd, project=project, name=name)
        body = {
            "target": target if target is not None else current.get("target", ""),
            "description": (
                description if description is not None else current.get("description", "")
            ),
        }
        headers = {"If-Match": etag} if etag else None
        try:
            await lxd.put(
                lxd_path("images", "aliases", name),
                project=project,
                json_body=body,
                headers=headers,
            )
        except LXDPreconditionFailed:
            raise
        except LXDError as exc:
            wanted = str(body["target"])
            mapped = ambiguous(exc, wanted) or _target_error(
                exc, target=wanted, name=name, project=project
            )
            if mapped is None:
                raise
            raise mapped from exc
        return await get_alias(lxd, project=project, name=name)

    async with one_edit_at_a_time("image-alias", lxd.base_url, project, name):
        return await edit_with_etag(
            attempt,
            attempts=ALIAS_UPDATE_ATTEMPTS,
            gave_up=lambda _: LXDPreconditionFailed(
                f"Image alias {name!r} kept changing while it was being updated"
            ),
        )


async def rename_alias(
    lxd: LXDClient, *, project: str, name: str, new_name: str
) -> tuple[dict[str, Any], str | None]:
    """Create the alias under its new name, then delete the old one.

    LXD 5.0.2's own rename (`POST /1.0/images/aliases/<name>`) answers only after 10 s (a
    database lock timeout inside LXD); create + delete takes milliseconds. For that moment both
    names exist; if the delete fails, the new name is removed again and the error reported.
    """
    async with one_edit_at_a_time("image-alias", lxd.base_url, project, name):
        current, _ = await get_alias(lxd, project=project, name=name)
        body = {
            "name": new_name,
            "target": current.get("target", ""),
            "description": current.get("description", ""),
        }
        if current.get("type"):
            body["type"] = current["type"]
        try:
            await lxd.post(lxd_path("images", "aliases"), project=project, json_body=body)
        except ConflictError as exc:
            raise ConflictError(
                f"Image alias {new_name!r} already exists in project {project!r}"
            ) from exc
        try:
            await lxd.delete(lxd_path("images", "aliases", name), project=project)
        except LXDNotFound:
            pass  # someone else removed the old name meanwhile: the rename still holds
        except LXDError:
            await lxd.delete(lxd_path("images", "aliases", new_name), project=project)
            raise
        return await get_alias(lxd, project=project, name=new_name)


async def delete_alias(lxd: LXDClient, *, project: str, name: str) -> None:
    with reword_not_found("Image alias", name, in_project=project):
        await lxd.delete(lxd_path("images", "aliases", name), project=project)
