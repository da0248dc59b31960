"""Image copies that fail before or without any image server: bad bodies (422, nothing sent
to LXD), an unknown project (404), and a server nobody listens on (the operation fails with
LXD's reason, which `wait` reports). Against the real LXD in both modes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import Headers, assert_error
from tests.support.images import drop_image_project, make_image_project

API = "/api/v1/images"


@pytest.fixture(scope="module")
async def project(lxd_raw: httpx.AsyncClient) -> AsyncIterator[str]:
    name = await make_image_project(lxd_raw)
    try:
        yield name
    finally:
        await drop_image_project(lxd_raw, name)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_raw(raw: httpx.AsyncClient, ref: dict[str, Any]) -> dict[str, Any]:
    done = await raw.get(f"{ref['operation_url']}/wait", params={"timeout": 60})
    return dict(done.json()["metadata"])


async def test_copy_from_unreachable_server(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    before = (await lxd_raw.get("/1.0/images", params={"project": project})).json()["metadata"]
    source = {
        "alias": "whatever",
        "server": f"https://127.0.0.1:{closed_port()}",
        "protocol": "lxd",
    }
    params = {"project": project}

    reply = await client.post(
        API, params={**params, "wait": "true"}, json={"source": source}, headers=auth_headers()
    )
    # The client named a server that does not answer: its mistake (400), not LXD's (502).
    body = assert_error(reply, 400, "bad_request")
    assert "127.0.0.1" in body["detail"]
    assert "connect" in body["detail"].lower()

    reply = await client.post(API, params=params, json={"source": source}, headers=auth_headers())
    assert reply.status_code == 202, reply.text
    op = await wait_raw(lxd_raw, reply.json())
    assert op["status"] == "Failure"
    assert "connect" in op["err"].lower()
    after = (await lxd_raw.get("/1.0/images", params={"project": project})).json()["metadata"]
    assert after == before


async def test_copy_bad_input(
    client: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    server = {"server": "https://127.0.0.1:1", "protocol": "lxd"}
    bad_bodies: list[dict[str, Any]] = [
        {"source": {"alias": "a", "fingerprint": "ab", **server}},
        {"source": server},
        {"source": {"alias": "a", "server": "http://127.0.0.1:1", "protocol": "lxd"}},
        {"source": {"alias": "a", "server": "https://127.0.0.1:1"}},
        {"source": {"alias": "a", "remote": "images", **server}},
        {"source": {"alias": "a", "remote": "nowhere"}},
        {"source": {"alias": "a", **server, "protocol": "ftp"}},
        {"source": {"alias": "a", **server, "certificate": "not a certificate"}},
        {"source": {"alias": "a", **server, "type": "container"}},
        {"source": {"alias": "a b", **server}},
        {"source": {"alias": "a", **server}, "aliases": ["x/y"]},
        {"source": {"alias": "a", **server}, "aliases": ["x", "x"]},
        {"source": {"alias": "a", **server}, "surprise": True},
    ]
    for body in bad_bodies:
        reply = await client.post(
            API, params={"project": project}, json=body, headers=auth_headers()
        )
        assert_error(reply, 422, "validation_error")
    reply = await client.post(
        API,
        params={"project": "no-such-project-x"},
        json={"source": {"alias": "a", **server}},
        headers=auth_headers(),
    )
    assert_error(reply, 404, "not_found")
