"""Files in an instance: `GET/POST/DELETE /1.0/instances/{name}/files?path=`.

What LXD 5.0.2 does (checked on the test daemon), and what this module makes of it:

* `GET` answers a regular file as `application/octet-stream` with `Content-Length`; a
  directory as the sync envelope with the entry names in `metadata`; a symlink as its target
  (`X-LXD-type: symlink`, not followed). Every answer carries `X-LXD-type`, `X-LXD-uid`,
  `X-LXD-gid`, `X-LXD-mode` (octal, e.g. `0644`) and `X-LXD-modified`. `HEAD` gives the same
  headers without a body (`instance_file_head`).
* A missing path is a 404 `Not Found` (a missing instance: 404 `Instance not found`; on `HEAD`
  both are a bare 404). Stopped containers are read and written like running ones.
* `POST` writes a file (`X-LXD-type: file`, `X-LXD-write: overwrite|append`) but refuses to
  create a missing parent (404 `Not Found`); a directory over an existing one succeeds. The body
  must be sent as `application/octet-stream`: with curl's default form type LXD reads the body as
  a form and writes an empty file. `X-LXD-mode` is parsed as C does (a leading 0 means octal),
  and only the permission bits are kept; a bad mode or uid is silently taken as 0. So uid, gid
  and mode are checked here and the mode is always sent as four octal digits. Owner and mode
  apply to what is created: on an existing file LXD keeps its own.
* `DELETE` (`file_delete`) removes a file, a symlink or an empty directory. A non-empty one is
  a 500 `sftp: "remove /x: directory not empty"`, a file over a directory a 500 `... is a
  directory`: both are conflicts (409) here.

Paths are checked before anything is sent (`check_path`), and they only ever travel as the
`path` query value of the instance's files endpoint, percent-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

import pydantic_core

from app.errors import (
    ConflictError,
    InvalidNameError,
    LXDBadGateway,
    LXDConflict,
    LXDError,
    LXDNotFound,
)
from app.lxd import Download, LXDClient, lxd_path, open_download

MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_NAME_BYTES = 255  # NAME_MAX
MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown
MAX_LISTING_BYTES = 16 * 1024 * 1024
MAX_LINK_BYTES = 64 * 1024
DIRECTORY_MODE = 0o755  # parents made by `mkdir=true`

# LXD's sftp failures (HTTP 500) that are about the request, by what they say.
_CONFLICTS = (
    ("directory not empty", "{path}: the directory is not empty"),
    ("is a directory", "{path} is a directory"),
    ("not a directory", "A parent of {path} is not a directory"),
)


class InvalidPathError(InvalidNameError):
    code = "invalid_path"


def check_path(path: str) -> str:
    """`path` if it is absolute and normalised (no `.`, `..` or empty segments, no trailing
    slash but for `/`), without NUL and within PATH_MAX/NAME_MAX; InvalidPathError (422)
    otherwise."""
    shown = repr(path[:80])
    if "\x00" in path:
        raise InvalidPathError(f"Invalid path {shown}: it contains NUL")
    if not path.startswith("/"):
        raise InvalidPathError(f"Invalid path {shown}: it must be absolute (start with /)")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPathError(f"Invalid path {shown}...: longer than {MAX_PATH_BYTES} bytes")
    if path == "/":
        return path
    if path.endswith("/"):
        raise InvalidPathError(f"Invalid path {shown}: it must not end with /")
    for segment in path[1:].split("/"):
        if segment in ("", ".", ".."):
            what = "an empty segment (//)" if not segment else f"a {segment!r} segment"
            raise InvalidPathError(f"Invalid path {shown}: it must be normalised, not {what}")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise InvalidPathError(f"Invalid path {shown}: a name longer than {MAX_NAME_BYTES}")
    return path


def _endpoint(name: str) -> str:
    return lxd_path("instances", name, "files")


def _instance_missing(name: str, project: str) -> LXDNotFound:
    return LXDNotFound(f"Instance {name!r} not found in project {project!r}")


def _path_missing(name: str, path: str) -> LXDNotFound:
    return LXDNotFound(f"No such file or directory in instance {name!r}: {path}")


def file_error(exc: LXDError, *, name: str, project: str, path: str) -> LXDError:
    """LXD's error for `path` as the client should hear it."""
    if isinstance(exc, LXDNotFound):
        if "instance" in exc.detail.lower():
            return _instance_missing(name, project)
        return _path_missing(name, path)
    reason = exc.detail.lower()
    for needle, message in _CONFLICTS:
        if needle in reason:
            return LXDConflict(message.format(path=path))
    return exc


def info_from_headers(path: str, headers: Any) -> dict[str, Any]:
    """`{path, type, uid, gid, mode, modified}` from LXD's `X-LXD-*` headers."""
    try:
        uid, gid = int(headers.get("x-lxd-uid", "0")), int(headers.get("x-lxd-gid", "0"))
        mode = int(headers.get("x-lxd-mode", "0"), 8)
    except ValueError as exc:
        raise LXDBadGateway(f"LXD sent unreadable file metadata for {path}") from exc
    kind = headers.get("x-lxd-type", "file")
    if kind not in ("file", "directory", "symlink"):
        raise LXDBadGateway(f"LXD reports an unknown file type {kind[:40]!r} for {path}")
    modified = headers.get("x-lxd-modified")
    return {
        "path": path,
        "type": kind,
        "uid": uid,
        "gid": gid,
        "mode": f"{mode:04o}",
        "modified": modified,
    }


async def stat(lxd: LXDClient, *, name: str, project: str, path: str) -> dict[str, Any] | None:
    """What is at `path` (`HEAD`), or None when nothing is (or the instance is missing)."""
    try:
        reply = await lxd.head(_endpoint(name), project=project, params={"path": path})
    except LXDNotFound:
        return None
    return info_from_headers(path, reply.headers)


async def _missing(lxd: LXDClient, *, name: str, project: str, path: str) -> LXDNotFound:
    """A bare 404 of `HEAD`, told apart: `/` exists in every instance that exists."""
    if await stat(lxd, name=name, project=project, path="/") is None:
        return _instance_missing(name, project)
    return _path_missing(name, path)


# --- reading ------------------------------------------------------------------------------
@dataclass
class FileRead:
    """What `GET` found: `info` (with `entries` for a directory, `target` for a symlink), and
    for a regular file the open `download` to stream."""

    info: dict[str, Any]
    download: Download | None = None


async def _read_small(download: Download, limit: int, path: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in download.chunks():
            size += len(chunk)
            if size > limit:
                raise LXDBadGateway(f"LXD's answer for {path} is larger than {limit} bytes")
            parts.append(chunk)
    finally:
        await download.aclose()
    return b"".join(parts)


async def read_path(lxd: LXDClient, *, name: str, project: str, path: str) -> FileRead:
    """`GET /1.0/instances/{name}/files?path=`: a file opened for streaming, a directory's
    listing, or a symlink's target."""
    try:
        download = await open_download(lxd, _endpoint(name), project=project, params={"path": path})
    except LXDError as exc:
        raise file_error(exc, name=name, project=project, path=path) from exc
    try:
        info = info_from_headers(path, download.headers)
    except BaseException:
        await download.aclose()
        raise
    if info["type"] == "file":
        return FileRead(info, download)
    if info["type"] == "symlink":
        target = await _read_small(download, MAX_LINK_BYTES, path)
        return FileRead({**info, "target": target.decode("utf-8", "replace")})
    body = await _read_small(download, MAX_LISTING_BYTES, path)
    try:
        entries = pydantic_core.from_json(body).get("metadata") or []
    except (ValueError, AttributeError) as exc:
        raise LXDBadGateway(f"LXD sent an unreadable listing of {path}") from exc
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise LXDBadGateway(f"LXD sent an unreadable listing of {path}")
    return FileRead({**info, "entries": sorted(entries)})


# --- writing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Owner:
    """uid, gid and mode for what an upload creates (None: LXD's default)."""

    uid: int | None = None
    gid: int | None = None
    mode: int | None = None

    def headers(self, *, mode: int | None = None) -> dict[str, str]:
        """LXD's headers for them; `mode` instead of the upload's own (directories)."""
        mode = self.mode if mode is None else mode
        headers = {}
        if self.uid is not None:
            headers["X-LXD-uid"] = str(self.uid)
        if self.gid is not None:
            headers["X-LXD-gid"] = str(self.gid)
        if mode is not None:
            # A leading 0: LXD parses the mode as C does (base by prefix), octal only with it.
            headers["X-LXD-mode"] = f"{mode:04o}"
        return headers


async def _post(
    lxd: LXDClient, *, name: str, project: str, path: str, headers: dict[str, str], **kw: Any
) -> None:
    try:
        await lxd.post(
            _endpoint(name), project=project, params={"path": path}, headers=headers, **kw
        )
    except LXDError as exc:
        raise file_error(exc, name=name, project=project, path=path) from exc


async def make_parents(
    lxd: LXDClient, *, name: str, project: str, path: str, owner: Owner
) -> list[str]:
    """Create the missing directories above `path`, top down (LXD makes one level at a time);
    the ones created. An existing symlink on the way is left for LXD to follow."""
    missing: list[str] = []
    current = posixpath.dirname(path)
    while (found := await stat(lxd, name=name, project=project, path=current)) is None:
        if current == "/":
            raise _instance_missing(name, project)
        missing.append(current)
        current = posixpath.dirname(current)
    if found["type"] == "file":
        raise ConflictError(f"{current} is a file, not a directory")
    headers = {"X-LXD-type": "directory", **owner.headers(mode=DIRECTORY_MODE)}
    for directory in reversed(missing):
        await _post(lxd, name=name, project=project, path=directory, headers=headers)
    return list(reversed(missing))


async def _check_parent(lxd: LXDClient, *, name: str, project: str, path: str) -> None:
    parent = posixpath.dirname(path)
    found = await stat(lxd, name=name, project=project, path=parent)
    if found is None:
        missing = await _missing(lxd, name=name, project=project, path=parent)
        if "Instance" not in missing.detail:
            missing = LXDNotFound(f"{missing.detail} (mkdir=true creates missing parents)")
        raise missing
    if found["type"] == "file":
        raise ConflictError(f"{parent} is a file, not a directory")


async def write_file(
    lxd: LXDClient,
    *,
    name: str,
    project: str,
    path: str,
    body: AsyncIterable[bytes],
    length: int | None,
    owner: Owner,
    mkdir: bool = False,
) -> tuple[bool, dict[str, Any]]:
    """`POST /1.0/instances/{name}/files?path=` with `body` streamed through (constant
    memory); with `mkdir`, missing parents are made first. (created, the file's metadata)."""
    if path == "/":
        raise ConflictError("/ is a directory")
    if mkdir:
        await make_parents(lxd, name=name, project=project, path=path, owner=owner)
    else:
        await _check_parent(lxd, name=name, project=project, path=path)
    before = await stat(lxd, name=name, project=project, path=path)
    if before is not None and before["type"] == "directory":
        raise ConflictError(f"{path} is a directory")
    headers = {
        "Content-Type": "application/octet-stream",  # any form type: LXD writes an empty file
        "X-LXD-type": "file",
        "X-LXD-write": "overwrite",
        **owner.headers(),
    }
    if length is not None:
        headers["Content-Length"] = str(length)
    try:
        await _post(lxd, name=name, project=project, path=path, headers=headers, content=body)
    except BaseException:
        # LXD writes as the body arrives: a body cut short (the client went away, the size
        # limit, LXD failing) leaves the part it got. A new file goes again; a replaced one
        # cannot come back (LXD writes in place).
        if before is None:
            await _remove_partial(lxd, name=name, project=project, path=path)
        raise
    after = await stat(lxd, name=name, project=project, path=path)
    if after is None:
        raise LXDBadGateway(f"LXD accepted {path} but does not show it")
    return before is None, after


async def _remove_partial(lxd: LXDClient, *, name: str, project: str, path: str) -> None:
    """Best effort, and shielded: a cancelled request (the client left) still cleans up."""

    async def remove() -> None:
        with contextlib.suppress(Exception):
            await lxd.delete(_endpoint(name), project=project, params={"path": path})

    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(remove())


async def delete_path(lxd: LXDClient, *, name: str, project: str, path: str) -> None:
    """`DELETE /1.0/instances/{name}/files?path=`: a file, a symlink or an empty directory."""
    if path == "/":
        raise ConflictError("/ cannot be deleted")
    try:
        await lxd.delete(_endpoint(name), project=project, params={"path": path})
    except LXDError as exc:
        raise file_error(exc, name=name, project=project, path=path) from exc
