"""Copying images from another server (`POST /images`), against the real LXD in both modes.

The source is a second sandbox daemon on 127.0.0.1 (its own LXD_DIR, port and bridge) that
serves a public image made here: a tiny image with a random marker, so its fingerprint differs
from the shared busybox image the test daemon already has. Copies land in a project of their
own and are read back with `lxd_raw`.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.core.config import Settings
from app.main import create_app
from tests.support.api import Headers, assert_error
from tests.support.auth import auth_for
from tests.support.images import (
    drop_image_project,
    image_tarball,
    import_image,
    make_image_project,
    raw_image,
)
from tests.support.lxd_sandbox import REPO, LXDEnv, start_sandbox, stop_sandbox

API = "/api/v1/images"
REMOTE_DIR = REPO / ".sandbox" / "test-remote" / "lxd"
REMOTE_PORT = "18643"
REMOTE_BRIDGE = "lxdapiimgsrc"


@dataclass(frozen=True)
class RemoteServer:
    url: str
    certificate: str
    socket_path: str


@dataclass(frozen=True)
class RemoteImage:
    fingerprint: str
    alias: str


@pytest.fixture(scope="module")
def remote_server(lxd_env: LXDEnv) -> Iterator[RemoteServer]:
    """A second LXD daemon that serves images over HTTPS on 127.0.0.1 (stopped afterwards)."""
    try:
        values = start_sandbox(
            REMOTE_DIR, REMOTE_PORT, SANDBOX_PUBLIC_IMAGE="1", SANDBOX_BRIDGE=REMOTE_BRIDGE
        )
    except Exception as exc:
        pytest.fail(f"could not start the image-server sandbox: {exc}")
    try:
        yield RemoteServer(
            url=values["LXD_REMOTE_URL"],
            certificate=Path(REMOTE_DIR / "server.crt").read_text(),
            socket_path=values["LXD_SOCKET_PATH"],
        )
    finally:
        stop_sandbox(REMOTE_DIR)


@pytest.fixture(scope="module")
async def remote_image(remote_server: RemoteServer) -> AsyncIterator[RemoteImage]:
    """A public image on the image server, with an lxc-style alias (`a/b`)."""
    transport = httpx.AsyncHTTPTransport(uds=remote_server.socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://lxd", timeout=60) as raw:
        fingerprint = await import_image(raw, image_tarball()[1], project="default", public=True)
        alias = f"lxd-api/test-{uuid.uuid4().hex[:8]}"
        made = await raw.post("/1.0/images/aliases", json={"name": alias, "target": fingerprint})
        assert made.status_code == 201, made.text
        try:
            yield RemoteImage(fingerprint, alias)
        finally:
            reply = await raw.delete(f"/1.0/images/{fingerprint}")
            if reply.status_code == 202:
                await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 30})


@pytest.fixture(scope="module")
async def project(lxd_raw: httpx.AsyncClient) -> AsyncIterator[str]:
    name = await make_image_project(lxd_raw)
    try:
        yield name
    finally:
        await drop_image_project(lxd_raw, name)


@pytest.fixture
async def landed(lxd_raw: httpx.AsyncClient, project: str) -> AsyncIterator[list[str]]:
    """Fingerprints a test copies into `project`; deleted afterwards."""
    fingerprints: list[str] = []
    yield fingerprints
    for fingerprint in fingerprints:
        reply = await lxd_raw.delete(f"/1.0/images/{fingerprint}", params={"project": project})
        if reply.status_code == 202:
            await lxd_raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 30})
        assert await raw_image(lxd_raw, fingerprint, project) is None


def lxd_source(server: RemoteServer, **key: str) -> dict[str, Any]:
    return {
        "type": "image",
        "server": server.url,
        "protocol": "lxd",
        "certificate": server.certificate,
        **key,
    }


async def wait_raw(raw: httpx.AsyncClient, ref: dict[str, Any]) -> dict[str, Any]:
    done = await raw.get(f"{ref['operation_url']}/wait", params={"timeout": 60})
    return dict(done.json()["metadata"])


# --- copies that work ---------------------------------------------------------------------------
async def test_copy_by_alias_from_lxd_server(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    remote_server: RemoteServer,
    remote_image: RemoteImage,
    landed: list[str],
) -> None:
    local = [f"copied-{uuid.uuid4().hex[:6]}", f"copied-{uuid.uuid4().hex[:6]}"]
    body = {"source": lxd_source(remote_server, alias=remote_image.alias), "aliases": local}
    landed.append(remote_image.fingerprint)
    reply = await client.post(API, params={"project": project}, json=body, headers=auth_headers())
    assert reply.status_code == 202, reply.text
    ref = reply.json()
    assert set(ref) == {"operation_id", "operation_url", "poll_url", "wait_url"}
    op = await wait_raw(lxd_raw, ref)
    assert op["status"] == "Success", op
    assert op["metadata"]["fingerprint"] == remote_image.fingerprint

    image = await raw_image(lxd_raw, remote_image.fingerprint, project)
    assert image is not None
    assert {alias["name"] for alias in image["aliases"]} == set(local)
    assert image["public"] is False
    assert image["properties"]["description"].startswith("lxd-api test image")
    for name in local:
        alias = await lxd_raw.get(f"/1.0/images/aliases/{name}", params={"project": project})
        assert alias.json()["metadata"]["target"] == remote_image.fingerprint
    # Only in the project asked for.
    assert await raw_image(lxd_raw, remote_image.fingerprint, "default") is None


async def test_copy_by_fingerprint_waiting(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    remote_server: RemoteServer,
    remote_image: RemoteImage,
    landed: list[str],
) -> None:
    body = {
        "source": lxd_source(remote_server, fingerprint=remote_image.fingerprint),
        "auto_update": True,
    }
    landed.append(remote_image.fingerprint)
    reply = await client.post(
        API, params={"project": project, "wait": "true"}, json=body, headers=auth_headers()
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Success"
    image = await raw_image(lxd_raw, remote_image.fingerprint, project)
    assert image is not None
    assert image["auto_update"] is True


async def test_copy_with_a_remote_name(
    settings: Settings,
    lxd_raw: httpx.AsyncClient,
    project: str,
    remote_server: RemoteServer,
    remote_image: RemoteImage,
    landed: list[str],
) -> None:
    """`"remote": "images"` (and lxc's `images:<alias>`) expands to the server of the settings."""
    custom = settings.model_copy(
        update={"IMAGE_REMOTE_IMAGES_URL": remote_server.url, "IMAGE_REMOTE_IMAGES_PROTOCOL": "lxd"}
    )
    application = create_app(custom)
    landed.append(remote_image.fingerprint)
    async with LifespanManager(application, startup_timeout=60):
        auth = await auth_for(application)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for source in (
                {"alias": remote_image.alias, "remote": "images"},
                {"alias": f"images:{remote_image.alias}"},
            ):
                source["certificate"] = remote_server.certificate
                alias = f"friendly-{uuid.uuid4().hex[:6]}"
                reply = await http.post(
                    API,
                    params={"project": project, "wait": "true"},
                    json={"source": source, "aliases": [alias]},
                    headers=auth.headers("admin"),
                )
                assert reply.status_code == 200, reply.text
                image = await raw_image(lxd_raw, remote_image.fingerprint, project)
                assert image is not None
                assert alias in {entry["name"] for entry in image["aliases"]}


BIG_IMAGE_BYTES = 48 * 1024 * 1024
# Bytes per second the proxy in front of the image server lets through (a copy of the big
# image takes about 2 s, long enough to be seen running whatever the load on the machine).
PROXY_RATE = 24 * 1024 * 1024


@asynccontextmanager
async def throttled_proxy(target: str) -> AsyncIterator[str]:
    """A TCP proxy on 127.0.0.1 in front of `target` (https://host:port) that slows the
    server's answers down to PROXY_RATE; TLS passes through untouched. Yields its URL."""
    host, port = target.removeprefix("https://").rsplit(":", 1)
    connections: set[asyncio.Future[Any]] = set()

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
        try:
            while data := await src.read(64 * 1024):
                dst.write(data)
                await dst.drain()
                if slow:
                    await asyncio.sleep(len(data) / PROXY_RATE)
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        both = asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        connections.add(both)
        await asyncio.gather(both, return_exceptions=True)
        connections.discard(both)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for connection in connections:
            connection.cancel()
        await asyncio.gather(*connections, return_exceptions=True)


@pytest.fixture(scope="module")
async def big_remote_image(
    remote_server: RemoteServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A public image big enough (48 MiB of uncompressed zeros) to be seen downloading."""
    path = tmp_path_factory.mktemp("big-image") / "image.tar"
    with tarfile.open(path, mode="w") as tar:
        meta = b"architecture: x86_64\ncreation_date: 1700000000\nproperties: {}\n"
        info = tarfile.TarInfo("metadata.yaml")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
        rootfs = tarfile.TarInfo("rootfs")
        rootfs.type = tarfile.DIRTYPE
        tar.addfile(rootfs)
        with open("/dev/zero", "rb") as zeros:
            blob = tarfile.TarInfo(f"rootfs/blob-{uuid.uuid4().hex}")
            blob.size = BIG_IMAGE_BYTES
            tar.addfile(blob, zeros)
    transport = httpx.AsyncHTTPTransport(uds=remote_server.socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://lxd", timeout=120) as raw:
        fingerprint = await import_image(raw, path.read_bytes(), project="default", public=True)
        path.unlink()
        try:
            yield fingerprint
        finally:
            reply = await raw.delete(f"/1.0/images/{fingerprint}")
            if reply.status_code == 202:
                await raw.get(f"{reply.json()['operation']}/wait", params={"timeout": 60})


async def test_copy_progress_is_visible_while_it_runs(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    remote_server: RemoteServer,
    big_remote_image: str,
    landed: list[str],
) -> None:
    landed.append(big_remote_image)
    progress: list[str] = []
    status, polls = "Running", 0
    async with throttled_proxy(remote_server.url) as slow_url:
        source = {**lxd_source(remote_server, fingerprint=big_remote_image), "server": slow_url}
        reply = await client.post(
            API, params={"project": project}, json={"source": source}, headers=auth_headers()
        )
        assert reply.status_code == 202, reply.text
        poll_url = reply.json()["poll_url"]
        while status == "Running" and polls < 600:
            polls += 1
            op = await client.get(poll_url, headers=auth_headers("viewer"))
            assert op.status_code == 200, op.text
            status = op.json()["status"]
            value = (op.json().get("metadata") or {}).get("download_progress")
            if value:
                progress.append(value)
            await asyncio.sleep(0.05)
    assert status == "Success", op.text
    assert progress, f"no download_progress seen in {polls} polls while the copy ran"
    assert "%" in progress[0]
    assert await raw_image(lxd_raw, big_remote_image, project) is not None


# --- copies that fail ---------------------------------------------------------------------------
async def test_copy_from_private_server_without_its_certificate(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    remote_server: RemoteServer,
    remote_image: RemoteImage,
) -> None:
    source = {"alias": remote_image.alias, "server": remote_server.url, "protocol": "lxd"}
    reply = await client.post(
        API,
        params={"project": project, "wait": "true"},
        json={"source": source},
        headers=auth_headers(),
    )
    body = assert_error(reply, reply.status_code)
    assert reply.status_code >= 400
    assert "certificate" in body["detail"]
    assert await raw_image(lxd_raw, remote_image.fingerprint, project) is None


async def test_copy_with_a_taken_alias_is_409(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    remote_server: RemoteServer,
    remote_image: RemoteImage,
) -> None:
    local = await import_image(lxd_raw, image_tarball()[1], project=project)
    taken = f"taken-{uuid.uuid4().hex[:6]}"
    made = await lxd_raw.post(
        "/1.0/images/aliases", params={"project": project}, json={"name": taken, "target": local}
    )
    assert made.status_code == 201
    body = {"source": lxd_source(remote_server, alias=remote_image.alias), "aliases": [taken]}
    reply = await client.post(API, params={"project": project}, json=body, headers=auth_headers())
    assert_error(reply, 409, "conflict")
    assert await raw_image(lxd_raw, remote_image.fingerprint, project) is None
