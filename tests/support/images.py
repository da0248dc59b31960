"""Test images and the projects that hold them, made straight at LXD (integration tests).

Every image here is a tiny unified tarball with a random marker (so a fresh fingerprint),
imported into a project of its own (`features.images=true`, the default for a new project): the
shared busybox image and the default project are never touched.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
from typing import Any

import httpx

from tests.support.raw_lxd import lxd_wait


def image_tarball(marker: str | None = None) -> tuple[str, bytes]:
    """A minimal unified image (metadata.yaml + rootfs/marker) and its fingerprint."""
    marker = marker or uuid.uuid4().hex
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))

        meta = (
            "architecture: x86_64\ncreation_date: 1700000000\n"
            f"properties:\n  description: lxd-api test image {marker}\n"
        )
        add("metadata.yaml", meta.encode())
        rootfs = tarfile.TarInfo("rootfs")
        rootfs.type, rootfs.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(rootfs)
        add("rootfs/marker", marker.encode())
    data = buf.getvalue()
    return hashlib.sha256(data).hexdigest(), data


def ambiguous_pair() -> tuple[tuple[str, bytes], tuple[str, bytes], str]:
    """Two images whose fingerprints share their first two hex digits, and that prefix."""
    seen: dict[str, tuple[str, bytes]] = {}
    while True:
        fingerprint, data = image_tarball()
        prefix = fingerprint[:2]
        if prefix in seen:
            return seen[prefix], (fingerprint, data), prefix
        seen[prefix] = (fingerprint, data)


async def import_image(
    raw: httpx.AsyncClient, data: bytes, *, project: str, public: bool = False
) -> str:
    headers = {"Content-Type": "application/octet-stream"}
    if public:
        headers["X-LXD-public"] = "true"
    reply = await raw.post(
        "/1.0/images", params={"project": project}, content=data, headers=headers
    )
    op = await lxd_wait(raw, reply)
    assert op["status"] == "Success", op
    return str(op["metadata"]["fingerprint"])


async def raw_image(
    raw: httpx.AsyncClient, fingerprint: str, project: str
) -> dict[str, Any] | None:
    reply = await raw.get(f"/1.0/images/{fingerprint}", params={"project": project})
    if reply.status_code == 404:
        return None
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["metadata"])


async def remove_images(raw: httpx.AsyncClient, project: str) -> None:
    """Delete every image of `project` (a project these tests made: all of them are ours)."""
    reply = await raw.get("/1.0/images", params={"project": project})
    for url in reply.json()["metadata"] or []:
        deleted = await raw.delete(url.split("?")[0], params={"project": project})
        if deleted.status_code == 202:
            await lxd_wait(raw, deleted)


async def make_image_project(raw: httpx.AsyncClient) -> str:
    name = f"ti-{uuid.uuid4().hex[:8]}"
    reply = await raw.post("/1.0/projects", json={"name": name})
    assert reply.status_code == 201, reply.text
    return name


async def drop_image_project(raw: httpx.AsyncClient, name: str) -> None:
    await remove_images(raw, name)
    reply = await raw.delete(f"/1.0/projects/{name}")
    assert reply.status_code == 200, f"project {name} left behind: {reply.text}"
