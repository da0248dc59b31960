"""LXD replies that are the client's mistake become 4xx; a header LXD cannot carry is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.errors import LXDBadRequest, LXDConflict, LXDError, LXDNotFound
from app.lxd import LXD_REQUEST_MISTAKES, error_from_lxd
from tests.support.auth import auth_for
from tests.support.lxd_replies import error


@pytest.mark.parametrize(
    ("message", "expected", "status"),
    [
        ('Instance is busy running a "stop" operation', LXDConflict, 409),
        ("Instance is busy running a restore operation", LXDConflict, 409),
        ("Image not provided for instance creation", LXDBadRequest, 400),
        (
            "Failed getting remote image info: Failed getting image: Failed parsing stream: Get "
            '"https://127.0.0.1:9/streams/v1/index.json": Unable to connect to: 127.0.0.1:9',
            LXDBadRequest,
            400,
        ),
        ('Failed creating instance record: Instance "web1" already exists', LXDConflict, 409),
        ('Storage volume "v" is currently in use', LXDConflict, 409),
        ("Failed to fetch instance: Instance not found", LXDNotFound, 404),
        ('Invalid config: Unknown configuration key: "foo"', LXDBadRequest, 400),
        ("The instance is already stopped", LXDBadRequest, 400),
        ("Failed to start: something in LXD broke", LXDError, 502),
    ],
)
def test_lxd_500_messages_map_to_what_they_mean(
    message: str, expected: type[LXDError], status: int
) -> None:
    error = error_from_lxd(500, message)
    assert type(error) is expected
    assert error.status_code == status
    assert error.detail == message


def test_lxd_own_status_wins_over_the_message() -> None:
    assert type(error_from_lxd(404, "is busy running a stop operation")) is LXDNotFound


def test_every_table_row_names_where_it_was_seen() -> None:
    for pattern, cls, seen in LXD_REQUEST_MISTAKES:
        assert issubclass(cls, LXDError)
        assert cls.status_code < 500, pattern
        assert seen.startswith("5."), pattern


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/instances/web1"),
        ("PATCH", "/api/v1/instances/web1"),
        ("PATCH", "/api/v1/storage/pools/default"),
        ("PATCH", "/api/v1/networks/br0"),
        ("PATCH", "/api/v1/projects/default"),
    ],
)
async def test_non_ascii_if_match_is_a_412_before_lxd(
    make_unit_app: Callable[..., Any], method: str, path: str
) -> None:
    seen: list[str] = []

    def lxd(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return error(500, "unexpected")

    app = await make_unit_app(lxd_handler=lxd)
    auth = await auth_for(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        reply = await http.request(
            method,
            path,
            json={"config": {}},
            headers={**auth.headers("admin"), "If-Match": '"caf\u00e9"'.encode()},
        )
    assert reply.status_code == 412, reply.text
    assert reply.json()["code"] == "precondition_failed"
    assert "request_id" in reply.json()
    assert not [call for call in seen if call.startswith(("PUT", "PATCH"))]
