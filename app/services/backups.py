"""Instance backups: list, get, create, delete, and export (a streamed `Download`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from app.errors import ConflictError, LXDNotFound, reword_not_found
from app.lxd import Download, LXDClient, LXDResponse, lxd_path, open_download
from app.services.listing import list_collection
from app.utils.pagination import ListQuery

# Magic numbers of what LXD can hand out as a backup (by `compression_algorithm`).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "tar.gz"),
    (b"BZh", "tar.bz2"),
    (b"\xfd7zXZ\x00", "tar.xz"),
    (b"\x28\xb5\x2f\xfd", "tar.zst"),
    (b"\x04\x22\x4d\x18", "tar.lz4"),
    (b"\x89LZO", "tar.lzo"),
    (b"\x5d\x00\x00", "tar.lzma"),
    (b"hsqs", "squashfs"),
)
_TAR_MAGIC_OFFSET = 257


def archive_extension(head: bytes) -> str:
    """The file extension a backup's first bytes call for."""
    for magic, extension in _MAGIC:
        if head.startswith(magic):
            return extension
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "tar"
    return "backup"


def _not_found(name: str, backup: str | None, project: str) -> AbstractContextManager[None]:
    if backup is None:
        return reword_not_found("Instance", name, in_project=project)
    return reword_not_found("Backup", backup, of=f"instance {name!r}", in_project=project)


async def list_backups(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    query: ListQuery,
) -> dict[str, Any]:
    with _not_found(name, None, project):
        return await list_collection(
            lxd,
            lxd_path("instances", name, "backups"),
            project=project,
            query=query,
        )


async def get_backup(lxd: LXDClient, *, name: str, backup: str, project: str) -> dict[str, Any]:
    with _not_found(name, backup, project):
        response = await lxd.get(lxd_path("instances", name, "backups", backup), project=project)
    return dict(response.metadata or {})


async def create_backup(
    lxd: LXDClient, *, name: str, project: str, body: dict[str, Any]
) -> LXDResponse:
    """POST /1.0/instances/{name}/backups (async). A taken name is refused before LXD starts
    an operation that can only fail."""
    backup = body.get("name")
    if backup:
        try:
            await lxd.get(lxd_path("instances", name, "backups", backup), project=project)
        except LXDNotFound:
            pass
        else:
            raise ConflictError(f"Backup {backup!r} of instance {name!r} already exists")
    with _not_found(name, None, project):
        return await lxd.post(
            lxd_path("instances", name, "backups"), project=project, json_body=body
        )


async def delete_backup(lxd: LXDClient, *, name: str, backup: str, project: str) -> LXDResponse:
    with _not_found(name, backup, project):
        return await lxd.delete(lxd_path("instances", name, "backups", backup), project=project)


async def open_export(lxd: LXDClient, *, name: str, backup: str, project: str) -> Download:
    """GET /1.0/instances/{name}/backups/{backup}/export, opened and peeked (for the file
    extension); the caller streams the rest."""
    path = lxd_path("instances", name, "backups", backup, "export")
    with _not_found(name, backup, project):
        return await open_download(lxd, path, project=project, peek=True)
