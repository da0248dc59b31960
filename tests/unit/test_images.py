"""Image routes against a mocked LXD: what LXD is sent for a copy (remote names expanded from
the settings, no traffic anywhere), and faults a real daemon will not produce on demand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.schemas.images import ImageCopy
from tests.support.fake_lxd import FakeLXD, client_for
from tests.support.lxd_replies import OP_ID, error, started, sync

FP = "ab" * 32


@pytest.mark.parametrize(
    ("source", "server", "protocol", "alias"),
    [
        (
            {"alias": "22.04", "remote": "ubuntu"},
            "https://ubuntu.example",
            "simplestreams",
            "22.04",
        ),
        (
            {"alias": "alpine/3.19", "remote": "images"},
            "https://images.example",
            "lxd",
            "alpine/3.19",
        ),
        ({"alias": "images:alpine/edge"}, "https://images.example", "lxd", "alpine/edge"),
    ],
)
async def test_remote_names_expand_from_settings(
    make_unit_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    source: dict[str, str],
    server: str,
    protocol: str,
    alias: str,
) -> None:
    settings = make_settings(
        IMAGE_REMOTE_UBUNTU_URL="https://ubuntu.example",
        IMAGE_REMOTE_IMAGES_URL="https://images.example",
        IMAGE_REMOTE_IMAGES_PROTOCOL="lxd",
    )
    fake = FakeLXD({("POST", "/1.0/images"): lambda _: started()})
    http, headers = await client_for(make_unit_app, fake, settings)
    async with http:
        body = {"source": source, "aliases": ["mine"], "public": True}
        reply = await http.post(
            "/api/v1/images", params={"project": "p1"}, json=body, headers=headers
        )
    assert reply.status_code == 202, reply.text
    assert reply.json()["operation_id"] == OP_ID
    [sent] = fake.sent("POST", "/1.0/images")
    assert sent == {
        "source": {
            "type": "image",
            "mode": "pull",
            "server": server,
            "protocol": protocol,
            "alias": alias,
        },
        "aliases": [{"name": "mine"}],
        "auto_update": False,
        "public": True,
    }
    # The taken-alias check asked in the right project, before the copy.
    assert fake.requests[0].url.path == "/1.0/images/aliases/mine"
    assert fake.requests[0].url.params["project"] == "p1"


async def test_explicit_server_with_certificate(make_unit_app: Callable[..., Any]) -> None:
    pem = (
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBszCCATqgAwIBAgIUQk1hYXNzZXJ0aW9uc2FyZWZ1bjAKBggqhkjOPQQDAzAA\n"
        "-----END CERTIFICATE-----\n"
    )
    fake = FakeLXD({("POST", "/1.0/images"): lambda _: started()})
    http, headers = await client_for(make_unit_app, fake)
    body = {
        "source": {
            "fingerprint": FP,
            "server": "https://10.1.1.1:8443",
            "protocol": "lxd",
            "certificate": pem,
        }
    }
    async with http:
        reply = await http.post("/api/v1/images", json=body, headers=headers)
    assert reply.status_code == 202, reply.text
    [sent] = fake.sent("POST", "/1.0/images")
    assert sent["source"]["fingerprint"] == FP
    assert sent["source"]["certificate"] == pem
    assert "alias" not in sent["source"]
    assert sent["aliases"] == []


async def test_remote_with_another_protocol_is_400(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD({("POST", "/1.0/images"): lambda _: started()})
    http, headers = await client_for(make_unit_app, fake)
    body = {"source": {"alias": "a", "remote": "images", "protocol": "lxd"}}
    async with http:
        reply = await http.post("/api/v1/images", json=body, headers=headers)
    assert reply.status_code == 400, reply.text
    assert "simplestreams" in reply.json()["detail"]
    assert fake.sent("POST", "/1.0/images") == []


async def test_copy_failure_with_wait_is_reported(make_unit_app: Callable[..., Any]) -> None:
    failed = {
        "id": OP_ID,
        "status": "Failure",
        "status_code": 400,
        "err": "Failed getting remote image info: Image not found",
    }
    fake = FakeLXD(
        {
            ("POST", "/1.0/images"): lambda _: started(),
            ("GET", f"/1.0/operations/{OP_ID}/wait"): lambda _: sync(failed),
        }
    )
    http, headers = await client_for(make_unit_app, fake)
    body = {"source": {"alias": "nope", "server": "https://10.1.1.1", "protocol": "simplestreams"}}
    async with http:
        reply = await http.post(
            "/api/v1/images", params={"wait": "true"}, json=body, headers=headers
        )
    assert reply.status_code == 404, reply.text
    assert reply.json()["detail"] == failed["err"]


def test_copy_schema_examples_are_valid() -> None:
    extra: Any = ImageCopy.model_config["json_schema_extra"]
    for example in extra["examples"]:
        ImageCopy.model_validate(example)


async def test_alias_update_never_uses_lxd_patch(make_unit_app: Callable[..., Any]) -> None:
    """LXD 5.0's alias PATCH hangs 20 s: an update is GET + PUT with If-Match, retried on 412."""
    alias = {"name": "a1", "target": FP, "description": "old", "type": "container"}
    puts: list[int] = []

    def put(request: httpx.Request) -> httpx.Response:
        puts.append(1)
        assert request.headers["If-Match"] == '"e1"'
        return error(412, "ETag doesn't match") if len(puts) == 1 else sync({})

    fake = FakeLXD(
        {
            ("GET", "/1.0/images/aliases/a1"): lambda _: sync(alias, etag='"e1"'),
            ("PUT", "/1.0/images/aliases/a1"): put,
        }
    )
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        reply = await http.patch(
            "/api/v1/images/aliases/a1", json={"description": "new"}, headers=headers
        )
    assert reply.status_code == 200, reply.text
    assert fake.sent("PUT", "/1.0/images/aliases/a1") == [{"target": FP, "description": "new"}] * 2
    assert not [r for r in fake.requests if r.method == "PATCH"]


async def test_alias_rename_rolls_back_when_the_old_name_cannot_go(
    make_unit_app: Callable[..., Any],
) -> None:
    alias = {"name": "a1", "target": FP, "description": "d", "type": "container"}
    fake = FakeLXD(
        {
            ("GET", "/1.0/images/aliases/a1"): lambda _: sync(alias),
            ("POST", "/1.0/images/aliases"): lambda _: sync(None, status=201),
            ("DELETE", "/1.0/images/aliases/a1"): lambda _: error(500, "database is locked"),
            ("DELETE", "/1.0/images/aliases/a2"): lambda _: sync({}),
        }
    )
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        reply = await http.post(
            "/api/v1/images/aliases/a1/rename", json={"name": "a2"}, headers=headers
        )
    assert reply.status_code >= 500, reply.text
    assert set(reply.json()) == {"detail", "code", "request_id"}
    assert fake.sent("POST", "/1.0/images/aliases") == [
        {"name": "a2", "target": FP, "description": "d", "type": "container"}
    ]
    assert len(fake.sent("DELETE", "/1.0/images/aliases/a2")) == 1


async def test_ambiguous_prefix_is_409(make_unit_app: Callable[..., Any]) -> None:
    fake = FakeLXD({("GET", "/1.0/images/ab"): lambda _: error(500, "More than one image matches")})
    http, headers = await client_for(make_unit_app, fake)
    async with http:
        reply = await http.get("/api/v1/images/ab", headers=headers)
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "ambiguous_fingerprint"
