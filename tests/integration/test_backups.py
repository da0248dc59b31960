"""Backups against the real LXD in both modes: create, list, get, export (a real tarball with
`backup/index.yaml`), delete, and bad input."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.api import wait_ref

API = "/api/v1/instances"
Headers = Callable[..., dict[str, str]]


async def lxd_backup(raw: httpx.AsyncClient, name: str, backup: str) -> Any:
    reply = await raw.get(f"/1.0/instances/{name}/backups/{backup}")
    return reply.json()["metadata"] if reply.status_code == 200 else None


async def test_backup_create_export_delete(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}/backups"
    created = await client.post(base, json={"name": "b1"}, headers=headers)
    op = await wait_ref(lxd_raw, created)
    assert op["status"] == "Success", op.get("err")
    assert (await lxd_backup(lxd_raw, stopped_instance, "b1"))["name"] == "b1"

    duplicate = await client.post(base, json={"name": "b1"}, headers=headers)
    assert duplicate.status_code == 409
    assert "b1" in duplicate.json()["detail"]

    viewer = auth_headers("viewer")
    listing = await client.get(base, headers=viewer)
    assert listing.status_code == 200
    assert [item["name"] for item in listing.json()["items"]] == ["b1"]
    names = await client.get(base, params={"expand": "false"}, headers=viewer)
    assert names.json()["items"] == ["b1"]
    one = await client.get(f"{base}/b1", headers=viewer)
    assert one.status_code == 200
    assert one.json()["name"] == "b1"
    assert "instance_only" in one.json()

    # Export is for operators (it hands out the whole filesystem).
    refused = await client.get(f"{base}/b1/export", headers=viewer)
    assert refused.status_code == 403
    export = await client.get(f"{base}/b1/export", headers=headers)
    assert export.status_code == 200
    assert export.headers["content-type"] == "application/octet-stream"
    assert (
        export.headers["content-disposition"]
        == f'attachment; filename="{stopped_instance}-b1.tar.gz"'
    )
    assert int(export.headers["content-length"]) == len(export.content)
    direct = await lxd_raw.get(f"/1.0/instances/{stopped_instance}/backups/b1/export")
    assert export.content == direct.content
    with tarfile.open(fileobj=io.BytesIO(export.content), mode="r:gz") as tar:
        assert "backup/index.yaml" in tar.getnames()
        index = tar.extractfile("backup/index.yaml")
        assert index is not None
        assert stopped_instance in index.read().decode()

    deleted = await client.delete(f"{base}/b1", params={"wait": "true"}, headers=headers)
    assert deleted.status_code == 200
    assert await lxd_backup(lxd_raw, stopped_instance, "b1") is None


async def test_backup_options_and_extension(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}/backups"
    created = await client.post(
        base,
        params={"wait": "true"},
        json={
            "name": "plain",
            "compression_algorithm": "none",
            "instance_only": True,
            "expires_at": "2031-01-01T00:00:00Z",
        },
        headers=headers,
    )
    assert created.status_code == 200, created.text
    real = await lxd_backup(lxd_raw, stopped_instance, "plain")
    assert real["instance_only"] is True
    assert real["expires_at"].startswith("2031-01-01")
    export = await client.get(f"{base}/plain/export", headers=headers)
    assert export.headers["content-disposition"].endswith('-plain.tar"')
    with tarfile.open(fileobj=io.BytesIO(export.content), mode="r:") as tar:
        assert "backup/index.yaml" in tar.getnames()


async def test_backup_bad_input(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    headers = auth_headers("operator")
    base = f"{API}/{stopped_instance}/backups"
    bad_bodies: list[dict[str, Any]] = [
        {"name": "a/b"},
        {"name": "b", "compression_algorithm": "bogus"},
        {"name": "b", "instance_only": "sometimes"},
        {"name": "b", "extra": True},
    ]
    for body in bad_bodies:
        reply = await client.post(base, json=body, headers=headers)
        assert reply.status_code == 422, (body, reply.text)
    for path in (f"{base}/nope", f"{base}/nope/export"):
        reply = await client.get(path, headers=headers)
        assert reply.status_code == 404, (path, reply.text)
        assert "nope" in reply.json()["detail"]
    gone = await client.delete(f"{base}/nope", headers=headers)
    assert gone.status_code == 404
    for suffix in ("", "/b1", "/b1/export"):
        reply = await client.get(f"{API}/nope-x1/backups{suffix}", headers=headers)
        assert reply.status_code == 404, suffix
    bad_name = await client.get(f"{base}/%2E%2E/export", headers=headers)
    assert bad_name.status_code == 422
    listing = await lxd_raw.get(f"/1.0/instances/{stopped_instance}/backups")
    assert listing.json()["metadata"] == []
