"""Images through the API against the real LXD (both modes), read back with `lxd_raw`.

Every image these tests make is a tiny unified tarball with a random marker (so a fresh
fingerprint), imported into a project of their own (`features.images=true`): the shared busybox
image and the default project are never touched, and fingerprint prefixes other tests use can
never turn ambiguous because of ours.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import Headers, assert_error
from tests.support.images import (
    ambiguous_pair,
    drop_image_project,
    image_tarball,
    import_image,
    make_image_project,
    raw_image,
)
from tests.support.lxd_sandbox import LXDEnv

API = "/api/v1/images"


@pytest.fixture(scope="module")
async def project(lxd_raw: httpx.AsyncClient) -> AsyncIterator[str]:
    name = await make_image_project(lxd_raw)
    try:
        yield name
    finally:
        await drop_image_project(lxd_raw, name)


# --- list and get ------------------------------------------------------------------------------
async def test_list_images(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    fingerprint = await import_image(lxd_raw, image_tarball()[1], project=project)
    second = await import_image(lxd_raw, image_tarball()[1], project=project)
    headers = auth_headers("viewer")
    reply = await client.get(API, params={"project": project}, headers=headers)
    assert reply.status_code == 200, reply.text
    page = reply.json()
    by_fp = {item["fingerprint"]: item for item in page["items"]}
    assert {fingerprint, second} <= set(by_fp)
    assert by_fp[fingerprint]["properties"]["description"].startswith("lxd-api test image")

    reply = await client.get(API, params={"project": project, "expand": "false"}, headers=headers)
    assert {fingerprint, second} <= set(reply.json()["items"])

    params = {"project": project, "filter": f"fingerprint eq {fingerprint}"}
    reply = await client.get(API, params=params, headers=headers)
    assert [item["fingerprint"] for item in reply.json()["items"]] == [fingerprint]

    params = {"project": project, "limit": "1", "offset": "1"}
    page = (await client.get(API, params=params, headers=headers)).json()
    assert len(page["items"]) == 1
    assert page["total"] >= 2
    assert (page["limit"], page["offset"]) == (1, 1)

    reply = await client.get(
        API, params={"project": project, "filter": "nonsense"}, headers=headers
    )
    assert_error(reply, 400, "bad_request")
    reply = await client.get(API, params={"project": "no-such-project-x"}, headers=headers)
    assert_error(reply, 404, "not_found")


async def test_default_project_lists_the_shared_image(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, lxd_env: LXDEnv, auth_headers: Headers
) -> None:
    alias = await lxd_raw.get(f"/1.0/images/aliases/{lxd_env.image_alias}")
    target = alias.json()["metadata"]["target"]
    reply = await client.get(API, params={"expand": "false"}, headers=auth_headers("viewer"))
    assert target in reply.json()["items"]


async def test_get_image_by_fingerprint_and_prefix(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    fingerprint = await import_image(lxd_raw, image_tarball()[1], project=project)
    headers = auth_headers("viewer")
    for ref in (fingerprint, fingerprint[:12], fingerprint.upper()[:16]):
        reply = await client.get(f"{API}/{ref}", params={"project": project}, headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.json()["fingerprint"] == fingerprint

    missing = "0" * 64 if not fingerprint.startswith("0") else "f" * 64
    reply = await client.get(f"{API}/{missing}", params={"project": project}, headers=headers)
    assert_error(reply, 404, "not_found")
    for bad in ("xyz", "a" * 65, "ab%3Fcd"):
        reply = await client.get(f"{API}/{bad}", params={"project": project}, headers=headers)
        assert_error(reply, 422, "validation_error")
    for bad in ("%2E%2E", f"{fingerprint}%2F..", "..%5C"):
        reply = await client.get(f"{API}/{bad}", params={"project": project}, headers=headers)
        assert_error(reply, 422)
    reply = await client.get(f"{API}/{fingerprint}", params={"project": "a/b"}, headers=headers)
    assert_error(reply, 422, "validation_error")


async def test_ambiguous_prefix_is_409(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    (first, first_data), (second, second_data), prefix = ambiguous_pair()
    await import_image(lxd_raw, first_data, project=project)
    await import_image(lxd_raw, second_data, project=project)
    params = {"project": project}
    reply = await client.get(f"{API}/{prefix}", params=params, headers=auth_headers("viewer"))
    body = assert_error(reply, 409, "ambiguous_fingerprint")
    assert prefix in body["detail"]
    reply = await client.delete(f"{API}/{prefix}", params=params, headers=auth_headers("admin"))
    assert_error(reply, 409, "ambiguous_fingerprint")
    assert await raw_image(lxd_raw, first, project) is not None
    assert await raw_image(lxd_raw, second, project) is not None
    # One more character settles it.
    reply = await client.get(f"{API}/{first[:12]}", params=params, headers=auth_headers())
    assert reply.json()["fingerprint"] == first


# --- delete ------------------------------------------------------------------------------------
async def test_delete_image(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    fingerprint = await import_image(lxd_raw, image_tarball()[1], project=project)
    alias = f"gone-{uuid.uuid4().hex[:6]}"
    made = await lxd_raw.post(
        "/1.0/images/aliases",
        params={"project": project},
        json={"name": alias, "target": fingerprint},
    )
    assert made.status_code == 201, made.text
    params = {"project": project}
    reply = await client.delete(f"{API}/{fingerprint}", params=params, headers=auth_headers())
    assert reply.status_code == 202, reply.text
    ref = reply.json()
    assert ref["poll_url"] == f"/api/v1/operations/{ref['operation_id']}"
    done = await lxd_raw.get(f"{ref['operation_url']}/wait", params={"timeout": 30})
    assert done.json()["metadata"]["status"] == "Success"
    assert await raw_image(lxd_raw, fingerprint, project) is None
    gone = await lxd_raw.get(f"/1.0/images/aliases/{alias}", params=params)
    assert gone.status_code == 404

    # By prefix, waiting through the API.
    fingerprint = await import_image(lxd_raw, image_tarball()[1], project=project)
    reply = await client.delete(
        f"{API}/{fingerprint[:16]}", params={**params, "wait": "true"}, headers=auth_headers()
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Success"
    assert await raw_image(lxd_raw, fingerprint, project) is None
    reply = await client.delete(f"{API}/{fingerprint}", params=params, headers=auth_headers())
    assert_error(reply, 404, "not_found")


async def test_image_roles(
    client: httpx.AsyncClient, lxd_raw: httpx.AsyncClient, auth_headers: Headers, project: str
) -> None:
    fingerprint = await import_image(lxd_raw, image_tarball()[1], project=project)
    params = {"project": project}
    assert_error(await client.get(API, params=params), 401)
    for role in ("viewer", "operator"):
        headers = auth_headers(role)
        reply = await client.delete(f"{API}/{fingerprint}", params=params, headers=headers)
        assert_error(reply, 403)
        body = {"source": {"alias": "x", "server": "https://127.0.0.1:1", "protocol": "lxd"}}
        assert_error(await client.post(API, params=params, json=body, headers=headers), 403)
    assert await raw_image(lxd_raw, fingerprint, project) is not None
