"""Files in an instance against the real LXD, in both modes: a 20 MB upload read back
byte-exact (through the API and from LXD itself), owner and mode as set, a directory listing,
a symlink reported, `mkdir=true`, delete, an upload cut short leaving no file, the errors (404,
409, 422, 403) and the audit entry with the path."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

pytestmark = pytest.mark.integration

Headers = Callable[..., dict[str, str]]
MB = 1000 * 1000


def files_url(name: str) -> str:
    return f"/api/v1/instances/{name}/files"


async def lxd_get(raw: httpx.AsyncClient, name: str, path: str) -> httpx.Response:
    return await raw.get(f"/1.0/instances/{name}/files", params={"path": path})


async def lxd_exists(raw: httpx.AsyncClient, name: str, path: str) -> bool:
    reply = await raw.head(f"/1.0/instances/{name}/files", params={"path": path})
    return reply.status_code == 200


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_20_mb_upload_reads_back_byte_exact(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, instance: str
) -> None:
    data = os.urandom(20 * MB)
    params = {"path": "/root/big.bin", "uid": "1000", "gid": "1001", "mode": "0640"}
    put = await client.put(
        files_url(instance), params=params, content=chunks(data), headers=auth_headers("operator")
    )  # chunked: no Content-Length
    assert put.status_code == 201, put.text
    assert put.json() | {"modified": None} == {
        "path": "/root/big.bin",
        "type": "file",
        "uid": 1000,
        "gid": 1001,
        "mode": "0640",
        "modified": None,
        "created": True,
    }
    assert put.headers["location"].endswith("/files?path=/root/big.bin")

    direct = await lxd_get(lxd_raw, instance, "/root/big.bin")
    assert hashlib.sha256(direct.content).digest() == hashlib.sha256(data).digest()
    assert (direct.headers["x-lxd-uid"], direct.headers["x-lxd-gid"]) == ("1000", "1001")
    assert direct.headers["x-lxd-mode"] == "0640"

    got = await client.get(
        files_url(instance), params={"path": "/root/big.bin"}, headers=auth_headers("viewer")
    )
    assert got.status_code == 200
    assert got.content == direct.content
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == str(20 * MB)
    assert (got.headers["x-file-uid"], got.headers["x-file-gid"]) == ("1000", "1001")
    assert (got.headers["x-file-mode"], got.headers["x-file-type"]) == ("0640", "file")
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"big.bin\"; filename*=UTF-8''big.bin"
    )

    # Replaced with a declared length (headers for owner/mode): LXD keeps what the file had.
    again = await client.put(
        files_url(instance),
        params={"path": "/root/big.bin"},
        content=b"small",
        headers={**auth_headers("operator"), "X-File-Mode": "0600", "X-File-Uid": "5"},
    )
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["mode"], again.json()["uid"]) == (
        False,
        "0640",
        1000,
    )
    assert (await lxd_get(lxd_raw, instance, "/root/big.bin")).content == b"small"


class ClientGone(Exception):
    """The upload's client went away mid-body."""


async def cut_short(data: bytes) -> AsyncIterator[bytes]:
    yield data
    await asyncio.sleep(0.2)  # LXD has written the first part by now
    raise ClientGone


async def test_an_upload_cut_short_leaves_no_new_file_behind(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, instance: str
) -> None:
    """LXD writes a file as its body arrives: without a clean-up a body cut short would leave
    the part it got (a 300 KB `partial.bin` here) at the path."""
    with pytest.raises(ClientGone):
        await client.put(
            files_url(instance),
            params={"path": "/root/partial.bin"},
            content=cut_short(os.urandom(300_000)),
            headers=auth_headers("operator"),
        )
    assert not await lxd_exists(lxd_raw, instance, "/root/partial.bin")


async def test_headers_set_owner_and_mode_of_a_new_file(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, instance: str
) -> None:
    headers = {**auth_headers("operator"), "X-File-Uid": "33", "X-File-Gid": "34"}
    put = await client.put(
        files_url(instance),
        params={"path": "/tmp/h.txt", "mode": "755"},
        content=b"#!/bin/sh\n",
        headers={**headers, "X-File-Mode": "0600"},  # the query's mode wins
    )
    assert put.status_code == 201, put.text
    direct = await lxd_get(lxd_raw, instance, "/tmp/h.txt")
    assert direct.content == b"#!/bin/sh\n"
    assert [direct.headers[f"x-lxd-{k}"] for k in ("uid", "gid", "mode")] == ["33", "34", "0755"]


async def test_directory_listing_and_symlink(
    client: httpx.AsyncClient, auth_headers: Headers, instance: str
) -> None:
    viewer = auth_headers("viewer")
    listing = await client.get(files_url(instance), params={"path": "/etc"}, headers=viewer)
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert (body["path"], body["type"], body["uid"], body["mode"]) == (
        "/etc",
        "directory",
        0,
        "0755",
    )
    assert {"passwd", "hostname", "group"} <= set(body["entries"])
    assert body["entries"] == sorted(body["entries"])

    root = await client.get(files_url(instance), params={"path": "/"}, headers=viewer)
    assert {"bin", "etc", "tmp"} <= set(root.json()["entries"])

    link = await client.get(files_url(instance), params={"path": "/bin/sh"}, headers=viewer)
    assert link.status_code == 200
    assert link.json()["type"] == "symlink"
    assert link.json()["target"] == "/bin/busybox"


async def test_mkdir_creates_parents_and_delete(
    client: httpx.AsyncClient, auth_headers: Headers, lxd_raw: httpx.AsyncClient, instance: str
) -> None:
    operator = auth_headers("operator")
    url = files_url(instance)
    refused = await client.put(
        url, params={"path": "/srv/a/b/c.txt"}, content=b"x", headers=operator
    )
    assert refused.status_code == 404, refused.text
    assert "mkdir=true" in refused.json()["detail"]
    made = await client.put(
        url,
        params={"path": "/srv/a/b/c.txt", "mkdir": "true", "uid": "7"},
        content=b"deep",
        headers=operator,
    )
    assert made.status_code == 201, made.text
    assert (await lxd_get(lxd_raw, instance, "/srv/a/b/c.txt")).content == b"deep"
    parent = await lxd_get(lxd_raw, instance, "/srv/a/b")
    assert parent.headers["x-lxd-type"] == "directory"
    assert (parent.headers["x-lxd-mode"], parent.headers["x-lxd-uid"]) == ("0755", "7")

    not_empty = await client.delete(url, params={"path": "/srv/a"}, headers=operator)
    assert not_empty.status_code == 409, not_empty.text
    assert not_empty.json()["code"] == "conflict"
    over_dir = await client.put(url, params={"path": "/srv/a"}, content=b"x", headers=operator)
    assert over_dir.status_code == 409
    under_file = await client.put(
        url, params={"path": "/srv/a/b/c.txt/d", "mkdir": "true"}, content=b"x", headers=operator
    )
    assert under_file.status_code == 409

    for path in ("/srv/a/b/c.txt", "/srv/a/b", "/srv/a"):
        gone = await client.delete(url, params={"path": path}, headers=operator)
        assert gone.status_code == 204, gone.text
        assert not await lxd_exists(lxd_raw, instance, path)
    missing = await client.delete(url, params={"path": "/srv/a"}, headers=operator)
    assert missing.status_code == 404


async def test_missing_paths_and_instances_are_404(
    client: httpx.AsyncClient, auth_headers: Headers, instance: str
) -> None:
    viewer = auth_headers("viewer")
    missing = await client.get(files_url(instance), params={"path": "/nope"}, headers=viewer)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert "/nope" in missing.json()["detail"]
    nobody = await client.get(files_url("no-such-it"), params={"path": "/etc"}, headers=viewer)
    assert nobody.status_code == 404
    assert "Instance 'no-such-it' not found" in nobody.json()["detail"]
    put = await client.put(
        files_url("no-such-it"),
        params={"path": "/x"},
        content=b"x",
        headers=auth_headers("operator"),
    )
    assert put.status_code == 404
    assert "Instance" in put.json()["detail"]


@pytest.mark.parametrize(
    "path", ["etc/passwd", "/etc/../etc/passwd", "/etc/./passwd", "//etc", "/etc/", "/a\x00b"]
)
async def test_bad_paths_are_422_before_lxd(
    client: httpx.AsyncClient, auth_headers: Headers, instance: str, path: str
) -> None:
    for method in ("GET", "PUT", "DELETE"):
        reply = await client.request(
            method, files_url(instance), params={"path": path}, headers=auth_headers("operator")
        )
        assert reply.status_code == 422, (method, path, reply.text)
        assert reply.json()["code"] == "invalid_path"
        assert set(reply.json()) == {"detail", "code", "request_id"}


async def test_a_viewer_cannot_write_and_stopped_containers_work(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    url = files_url(stopped_instance)
    viewer = auth_headers("viewer")
    refused = await client.put(url, params={"path": "/tmp/v"}, content=b"x", headers=viewer)
    assert refused.status_code == 403
    assert not await lxd_exists(lxd_raw, stopped_instance, "/tmp/v")
    assert (
        await client.delete(url, params={"path": "/etc/hostname"}, headers=viewer)
    ).status_code == 403
    operator = auth_headers("operator")
    put = await client.put(url, params={"path": "/tmp/s"}, content=b"stopped", headers=operator)
    assert put.status_code == 201, put.text
    read = await client.get(url, params={"path": "/tmp/s"}, headers=viewer)
    assert read.content == b"stopped"


async def test_the_audit_entry_carries_the_path(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: Headers, instance: str
) -> None:
    url = files_url(instance)
    await client.put(
        url,
        params={"path": "/tmp/audited.txt"},
        content=b"secret-content",
        headers=auth_headers("operator"),
    )
    await client.put(
        url, params={"path": "/tmp/by-viewer"}, content=b"x", headers=auth_headers("viewer")
    )
    await client.delete(url, params={"path": "/tmp/audited.txt"}, headers=auth_headers("operator"))
    assert await app.state.audit_log.flush(10)
    reply = await client.get(
        "/api/v1/audit",
        params={"target": f"instances/{instance}", "limit": 100},
        headers=auth_headers("admin"),
    )
    items: list[dict[str, Any]] = reply.json()["items"]
    got = [(e["method"], e["path"], e["status"], e["detail"]) for e in reversed(items)]
    assert got == [
        ("PUT", url, 201, "/tmp/audited.txt"),
        ("PUT", url, 403, "/tmp/by-viewer [forbidden]"),
        ("DELETE", url, 204, "/tmp/audited.txt"),
    ]
    assert "secret-content" not in reply.text
