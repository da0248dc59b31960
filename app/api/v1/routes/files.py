"""Files in an instance: `/api/v1/instances/{name}/files?path=/abs/path` (viewer reads;
operator uploads and deletes). Downloads and uploads stream with constant memory; the path is
checked here before LXD sees it, and it is the audit entry's `detail`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from app.api.deps import LXDDep, OperatorUser, ProjectDep, ViewerUser
from app.api.params import InstanceName
from app.api.responses import DownloadResponse, error_responses
from app.audit import note_detail
from app.core.config import API_V1_PREFIX
from app.errors import BadRequestError
from app.schemas.files import DirectoryListing, FileWritten, SymlinkInfo
from app.services import files as service
from app.services.files import MAX_ID, Owner

MODE_PATTERN = r"^0?[0-7]{3}$"


async def note_path(request: Request) -> None:
    """The path the request is about, for its audit entry: noted before anything can refuse
    it (401, 403, 422), so refused attempts carry it too."""
    path = request.query_params.get("path")
    if path is not None:
        note_detail(path)


async def file_path(
    path: Annotated[
        str,
        Query(
            min_length=1,
            max_length=service.MAX_PATH_BYTES,
            description="Absolute, normalised path in the instance: no `.`/`..` or empty "
            "segments, no trailing `/` (but `/` itself), no NUL; at most 4096 bytes (each "
            "name 255). Anything else is a 422 before LXD is asked.",
            examples=["/etc/hostname"],
        ),
    ],
) -> str:
    return service.check_path(path)


FilePath = Annotated[str, Depends(file_path)]
router = APIRouter(
    prefix=API_V1_PREFIX + "/instances/{name}/files",
    tags=["files"],
    dependencies=[Depends(note_path)],
)

FILE_HEADERS = {
    "X-File-Type": {"description": "`file`", "schema": {"type": "string"}},
    "X-File-Uid": {"description": "Owner (uid in the instance)", "schema": {"type": "integer"}},
    "X-File-Gid": {"description": "Group (gid in the instance)", "schema": {"type": "integer"}},
    "X-File-Mode": {"description": "Permission bits, octal (`0644`)", "schema": {"type": "string"}},
    "Content-Length": {"description": "The size, when LXD gives it", "schema": {"type": "integer"}},
}
_READ_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "A regular file: its bytes (`application/octet-stream`, headers "
        "`X-File-*`). A directory: `DirectoryListing` JSON. A symlink: `SymlinkInfo` JSON.",
        "headers": FILE_HEADERS,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/DirectoryListing"},
                        {"$ref": "#/components/schemas/SymlinkInfo"},
                    ]
                }
            },
        },
    },
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes, streamed to LXD as they arrive",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


_NOT_IN_QUOTED = re.compile(r'[^\x20-\x7e]|["\\]')


def _disposition(path: str) -> str:
    """`attachment` with the file's name: plain ASCII for every client (curl -J), and the
    exact name (RFC 6266 `filename*`) for those that read it."""
    filename = path.rsplit("/", 1)[-1] or "file"
    plain = _NOT_IN_QUOTED.sub("_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "",
    response_model=DirectoryListing | SymlinkInfo,
    summary="Download a file or list a directory",
    description="`GET /1.0/instances/{name}/files?path=`. A regular file is streamed through "
    "as LXD sends it (constant memory; `Content-Type: application/octet-stream`, "
    "`Content-Length`, `X-File-Uid`, `X-File-Gid`, `X-File-Mode`, `X-File-Type: file`, "
    "`Content-Disposition: attachment`); a client that goes away closes the stream from LXD. "
    'A directory answers JSON `{path, type: "directory", uid, gid, mode, modified, entries: '
    '[names, sorted]}`; a symlink `{path, type: "symlink", uid, gid, mode, modified, target}` '
    "(reported, not followed). A missing path or instance is a 404. Stopped containers are "
    "readable. Role: viewer.",
    responses={**_READ_RESPONSES, **error_responses(404)},
)
async def read_file(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, _: ViewerUser, path: FilePath
) -> Response:
    found = await service.read_path(lxd, name=name, project=project, path=path)
    if found.download is None:
        return JSONResponse(found.info)
    info = found.info
    headers = {
        "X-File-Type": "file",
        "X-File-Uid": str(info["uid"]),
        "X-File-Gid": str(info["gid"]),
        "X-File-Mode": info["mode"],
        "Content-Disposition": _disposition(path),
    }
    if modified := found.download.headers.get("last-modified"):
        headers["Last-Modified"] = modified
    return DownloadResponse(found.download, media_type="application/octet-stream", headers=headers)


UPLOAD_CHUNK = 1024 * 1024


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body in chunks of about UPLOAD_CHUNK: the server hands it on in pieces of
    a few KiB, and each write to LXD costs more than joining them."""
    pending = bytearray()
    async for chunk in request.stream():
        pending += chunk
        if len(pending) >= UPLOAD_CHUNK:
            yield bytes(pending)
            pending.clear()
    if pending:  # never an empty chunk: it would end a chunked upload to LXD early
        yield bytes(pending)


Uid = Annotated[int | None, Query(ge=0, le=MAX_ID, description="Owner of a new file (uid)")]
Gid = Annotated[int | None, Query(ge=0, le=MAX_ID, description="Group of a new file (gid)")]
Mode = Annotated[
    str | None,
    Query(pattern=MODE_PATTERN, description="Mode of a new file, octal", examples=["0644"]),
]
UidHeader = Annotated[
    int | None, Header(alias="X-File-Uid", ge=0, le=MAX_ID, description="`uid`, as a header")
]
GidHeader = Annotated[
    int | None, Header(alias="X-File-Gid", ge=0, le=MAX_ID, description="`gid`, as a header")
]
ModeHeader = Annotated[
    str | None,
    Header(alias="X-File-Mode", pattern=MODE_PATTERN, description="`mode`, as a header"),
]


@router.put(
    "",
    status_code=201,
    response_model=FileWritten,
    summary="Upload a file",
    description="`POST /1.0/instances/{name}/files?path=` (`X-LXD-type: file`, `X-LXD-write: "
    "overwrite`), the request body streamed to LXD as it arrives (constant memory; at most "
    "MAX_FILE_UPLOAD_BYTES, else 413). Owner and mode from `?uid=&gid=&mode=` or the headers "
    "`X-File-Uid`, `X-File-Gid`, `X-File-Mode` (the query wins; mode octal, permission bits "
    "only); they apply to a new file, LXD keeps those of a file it replaces. `?mkdir=true` "
    "creates missing parent directories one by one (mode 0755, the upload's uid/gid); without "
    "it a missing parent is a 404. 201 with the file's metadata as LXD reports it afterwards "
    "(200 when an existing file was replaced). A directory at the path (or a file where a "
    "parent should be) is a 409. An upload cut short leaves no new file behind (one it "
    "replaced stays cut short: LXD writes in place). Stopped containers are writable. Role: "
    "operator.",
    responses={
        200: {"model": FileWritten, "description": "An existing file was replaced"},
        **error_responses(404, 409, 413),
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload_file(
    request: Request,
    name: InstanceName,
    lxd: LXDDep,
    project: ProjectDep,
    _: OperatorUser,
    path: FilePath,
    uid: Uid = None,
    gid: Gid = None,
    mode: Mode = None,
    x_uid: UidHeader = None,
    x_gid: GidHeader = None,
    x_mode: ModeHeader = None,
    mkdir: Annotated[bool, Query(description="Create missing parent directories")] = False,
) -> JSONResponse:
    chosen_mode = mode if mode is not None else x_mode
    owner = Owner(
        uid=uid if uid is not None else x_uid,
        gid=gid if gid is not None else x_gid,
        mode=int(chosen_mode, 8) if chosen_mode is not None else None,
    )
    length = request.headers.get("content-length")
    try:
        created, info = await service.write_file(
            lxd,
            name=name,
            project=project,
            path=path,
            body=_body(request),
            length=int(length) if length is not None else None,
            owner=owner,
            mkdir=mkdir,
        )
    except ClientDisconnect as exc:
        # The client left (or the body limit cut it off: then it has its 413 already).
        raise BadRequestError(
            "The upload ended before its body did", code="upload_incomplete"
        ) from exc
    headers = {"Location": f"{request.url.path}?path={quote(path, safe='/')}"} if created else None
    return JSONResponse(
        {**info, "created": created}, status_code=201 if created else 200, headers=headers
    )


@router.delete(
    "",
    status_code=204,
    summary="Delete a file or an empty directory",
    description="`DELETE /1.0/instances/{name}/files?path=` (LXD's `file_delete`): a file, a "
    "symlink (not what it points to) or an empty directory. 204. A missing path is a 404, a "
    "directory that is not empty (or `/`) a 409. Role: operator.",
    responses=error_responses(404, 409),
)
async def delete_file(
    name: InstanceName, lxd: LXDDep, project: ProjectDep, _: OperatorUser, path: FilePath
) -> Response:
    await service.delete_path(lxd, name=name, project=project, path=path)
    return Response(status_code=204)
