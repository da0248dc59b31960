"""Image aliases through the API against the real LXD (both modes), read back with `lxd_raw`,
in a project of their own (see tests/support/images.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import Headers, assert_error
from tests.support.images import drop_image_project, image_tarball, import_image, make_image_project

API = "/api/v1/images/aliases"


@pytest.fixture(scope="module")
async def project(lxd_raw: httpx.AsyncClient) -> AsyncIterator[str]:
    name = await make_image_project(lxd_raw)
    try:
        yield name
    finally:
        await drop_image_project(lxd_raw, name)


@pytest.fixture(scope="module")
async def images(lxd_raw: httpx.AsyncClient, project: str) -> list[str]:
    """Two images of the project (removed with it)."""
    return [await import_image(lxd_raw, image_tarball()[1], project=project) for _ in range(2)]


def alias_name() -> str:
    return f"ta-{uuid.uuid4().hex[:8]}"


async def raw_alias(raw: httpx.AsyncClient, name: str, project: str) -> dict[str, Any] | None:
    reply = await raw.get(f"/1.0/images/aliases/{name}", params={"project": project})
    if reply.status_code == 404:
        return None
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["metadata"])


async def make_alias(raw: httpx.AsyncClient, name: str, target: str, project: str) -> str:
    body = {"name": name, "target": target, "description": "made raw"}
    reply = await raw.post("/1.0/images/aliases", params={"project": project}, json=body)
    assert reply.status_code == 201, reply.text
    return name


# --- create ------------------------------------------------------------------------------------
async def test_create_alias(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    name = alias_name()
    body = {"name": name, "target": images[0][:12], "description": "first"}
    reply = await client.post(API, params={"project": project}, json=body, headers=auth_headers())
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"{API}/{name}"
    assert reply.json()["target"] == images[0]
    stored = await raw_alias(lxd_raw, name, project)
    assert stored is not None
    assert (stored["target"], stored["description"]) == (images[0], "first")

    # Taken name: 409, and the alias still points where it did.
    body = {"name": name, "target": images[1]}
    reply = await client.post(API, params={"project": project}, json=body, headers=auth_headers())
    assert_error(reply, 409, "conflict")
    assert (await raw_alias(lxd_raw, name, project) or {})["target"] == images[0]


async def test_create_alias_bad_input(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    params, headers = {"project": project}, auth_headers()
    name = alias_name()
    missing = "0" * 64 if not images[0].startswith("0") else "f" * 64
    reply = await client.post(
        API, params=params, json={"name": name, "target": missing}, headers=headers
    )
    body = assert_error(reply, 404, "not_found")
    assert "target" in body["detail"]
    assert await raw_alias(lxd_raw, name, project) is None
    for bad in (
        {"name": "a/b", "target": images[0]},
        {"name": "..", "target": images[0]},
        {"name": name, "target": "not-hex"},
        {"name": name},
        {"name": name, "target": images[0], "extra": 1},
    ):
        assert_error(await client.post(API, params=params, json=bad, headers=headers), 422)
    assert await raw_alias(lxd_raw, name, project) is None


# --- read --------------------------------------------------------------------------------------
async def test_list_and_get_aliases(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    name = await make_alias(lxd_raw, alias_name(), images[0], project)
    # An alias with `/` made outside this API: listed with its real name...
    slashed = await make_alias(lxd_raw, f"os/{alias_name()}", images[1], project)
    params, headers = {"project": project}, auth_headers("viewer")
    try:
        reply = await client.get(API, params=params, headers=headers)
        assert reply.status_code == 200, reply.text
        by_name = {item["name"]: item for item in reply.json()["items"]}
        assert by_name[name]["target"] == images[0]
        assert by_name[slashed]["target"] == images[1]
        reply = await client.get(API, params={**params, "expand": "false"}, headers=headers)
        assert {name, slashed} <= set(reply.json()["items"])

        reply = await client.get(f"{API}/{name}", params=params, headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {**by_name[name]}
        assert reply.headers.get("etag")

        # ...but not addressable one by one (422): nothing reaches LXD.
        escaped = slashed.replace("/", "%2F")
        reply = await client.get(f"{API}/{escaped}", params=params, headers=headers)
        assert_error(reply, 422)
        reply = await client.delete(f"{API}/{escaped}", params=params, headers=auth_headers())
        assert_error(reply, 422)
        assert await raw_alias(lxd_raw, slashed, project) is not None
    finally:
        await lxd_raw.delete(f"/1.0/images/aliases/{slashed}", params=params)

    reply = await client.get(f"{API}/{alias_name()}", params=params, headers=headers)
    assert_error(reply, 404, "not_found")
    reply = await client.get(f"{API}/%2E%2E", params=params, headers=headers)
    assert_error(reply, 422)
    reply = await client.get(f"{API}/-bad", params=params, headers=headers)
    assert_error(reply, 422, "validation_error")
    reply = await client.get(API, params={"project": "no-such-project-x"}, headers=headers)
    assert_error(reply, 404, "not_found")


# --- update ------------------------------------------------------------------------------------
async def test_patch_alias(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    name = await make_alias(lxd_raw, alias_name(), images[0], project)
    params, headers = {"project": project}, auth_headers()
    url = f"{API}/{name}"

    reply = await client.patch(url, params=params, json={"description": "new"}, headers=headers)
    assert reply.status_code == 200, reply.text
    stored = await raw_alias(lxd_raw, name, project)
    assert stored is not None
    assert (stored["target"], stored["description"]) == (images[0], "new")

    reply = await client.patch(url, params=params, json={"target": images[1][:10]}, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["target"] == images[1]
    stored = await raw_alias(lxd_raw, name, project)
    assert stored is not None
    assert (stored["target"], stored["description"]) == (images[1], "new")

    # Two edits at once both land.
    await asyncio.gather(
        client.patch(url, params=params, json={"target": images[0]}, headers=headers),
        client.patch(url, params=params, json={"description": "both"}, headers=headers),
    )
    stored = await raw_alias(lxd_raw, name, project)
    assert stored is not None
    assert (stored["target"], stored["description"]) == (images[0], "both")

    missing = "0" * 64 if not images[0].startswith("0") else "f" * 64
    reply = await client.patch(url, params=params, json={"target": missing}, headers=headers)
    assert_error(reply, 404, "not_found")
    assert (await raw_alias(lxd_raw, name, project) or {})["target"] == images[0]
    assert_error(await client.patch(url, params=params, json={}, headers=headers), 422)
    reply = await client.patch(
        f"{API}/{alias_name()}", params=params, json={"description": "x"}, headers=headers
    )
    assert_error(reply, 404, "not_found")


async def test_rename_alias(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    name = await make_alias(lxd_raw, alias_name(), images[0], project)
    other = await make_alias(lxd_raw, alias_name(), images[1], project)
    params, headers = {"project": project}, auth_headers()
    new = alias_name()
    reply = await client.post(
        f"{API}/{name}/rename", params=params, json={"name": new}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["name"] == new
    assert await raw_alias(lxd_raw, name, project) is None
    renamed = await raw_alias(lxd_raw, new, project)
    assert renamed is not None
    assert (renamed["target"], renamed["description"]) == (images[0], "made raw")

    reply = await client.post(
        f"{API}/{new}/rename", params=params, json={"name": other}, headers=headers
    )
    assert_error(reply, 409, "conflict")
    assert (await raw_alias(lxd_raw, other, project) or {})["target"] == images[1]
    reply = await client.post(
        f"{API}/{alias_name()}/rename", params=params, json={"name": alias_name()}, headers=headers
    )
    assert_error(reply, 404, "not_found")
    reply = await client.post(
        f"{API}/{new}/rename", params=params, json={"name": "x/y"}, headers=headers
    )
    assert_error(reply, 422)


async def test_delete_alias(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    name = await make_alias(lxd_raw, alias_name(), images[0], project)
    params = {"project": project}
    reply = await client.delete(f"{API}/{name}", params=params, headers=auth_headers())
    assert reply.status_code == 204, reply.text
    assert await raw_alias(lxd_raw, name, project) is None
    image = await lxd_raw.get(f"/1.0/images/{images[0]}", params=params)
    assert image.status_code == 200
    reply = await client.delete(f"{API}/{name}", params=params, headers=auth_headers())
    assert_error(reply, 404, "not_found")


async def test_alias_roles(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    auth_headers: Headers,
    project: str,
    images: list[str],
) -> None:
    name = await make_alias(lxd_raw, alias_name(), images[0], project)
    params = {"project": project}
    assert_error(await client.get(API, params=params), 401)
    reply = await client.get(f"{API}/{name}", params=params, headers=auth_headers("viewer"))
    assert reply.status_code == 200
    for role in ("viewer", "operator"):
        headers = auth_headers(role)
        body = {"name": alias_name(), "target": images[0]}
        assert_error(await client.post(API, params=params, json=body, headers=headers), 403)
        reply = await client.patch(
            f"{API}/{name}", params=params, json={"description": "x"}, headers=headers
        )
        assert_error(reply, 403)
        reply = await client.post(
            f"{API}/{name}/rename", params=params, json={"name": "zz"}, headers=headers
        )
        assert_error(reply, 403)
        assert_error(await client.delete(f"{API}/{name}", params=params, headers=headers), 403)
    stored = await raw_alias(lxd_raw, name, project)
    assert stored is not None
    assert stored["description"] == "made raw"
