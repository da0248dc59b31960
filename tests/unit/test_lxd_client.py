"""The LXD client against a mocked transport: envelope parsing, error mapping, safe paths."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app import errors as exc
from app.core.config import Settings
from app.lxd import LXDClient, check_segment, lxd_path
from tests.support.lxd_replies import envelope


def make_client(
    make_settings: Callable[..., Settings], handler: Callable[[httpx.Request], httpx.Response]
) -> LXDClient:
    return LXDClient(make_settings(), transport=httpx.MockTransport(handler))


async def test_sync_reply_is_parsed_with_etag(make_settings: Callable[..., Settings]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/1.0/instances/web1"
        assert request.url.params["project"] == "p1"
        return httpx.Response(200, json=envelope(metadata={"name": "web1"}), headers={"ETag": "x"})

    lxd = make_client(make_settings, handler)
    reply = await lxd.get(lxd_path("instances", "web1"), project="p1")
    assert reply.metadata == {"name": "web1"}
    assert reply.etag == "x"
    assert not reply.is_async
    await lxd.close()


async def test_async_reply_names_its_operation(make_settings: Callable[..., Settings]) -> None:
    op = {"id": "1234-abcd", "status": "Running", "status_code": 103}

    def handler(_: httpx.Request) -> httpx.Response:
        body = envelope("async", 100, operation="/1.0/operations/1234-abcd", metadata=op)
        return httpx.Response(202, json=body)

    lxd = make_client(make_settings, handler)
    reply = await lxd.post(lxd_path("instances"), json_body={"name": "x"})
    assert reply.is_async
    assert reply.operation_id == "1234-abcd"
    await lxd.close()


@pytest.mark.parametrize(
    ("status", "message", "error_type", "http_status"),
    [
        (404, "Instance not found", exc.LXDNotFound, 404),
        (409, "Instance already exists", exc.LXDConflict, 409),
        (400, "Invalid instance name", exc.LXDBadRequest, 400),
        (403, "not authorized", exc.LXDForbidden, 403),
        (412, "ETag doesn't match", exc.LXDPreconditionFailed, 412),
        (500, "Invalid filter: clause has no operator", exc.LXDBadRequest, 400),
        (500, "Storage volume already exists", exc.LXDConflict, 409),
        (500, "Only empty projects can be removed", exc.LXDConflict, 409),
        (500, "More than one image matches", exc.LXDConflict, 409),
        (500, "open /var/lib/lxd: input/output error", exc.LXDError, 502),
    ],
)
async def test_error_replies_map_to_typed_errors(
    make_settings: Callable[..., Settings],
    status: int,
    message: str,
    error_type: type[exc.LXDError],
    http_status: int,
) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        body = envelope("error", 0, error_code=status, error=message)
        return httpx.Response(status, json=body)

    lxd = make_client(make_settings, handler)
    with pytest.raises(error_type) as caught:
        await lxd.get(lxd_path("instances", "x"))
    assert type(caught.value) is error_type
    assert caught.value.status_code == http_status
    assert caught.value.detail == message
    await lxd.close()


async def test_timeout_is_504(make_settings: Callable[..., Settings]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    lxd = make_client(make_settings, handler)
    with pytest.raises(exc.LXDTimeout) as caught:
        await lxd.get("/1.0")
    assert caught.value.status_code == 504
    await lxd.close()


async def test_unreachable_is_503(make_settings: Callable[..., Settings]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    lxd = make_client(make_settings, handler)
    with pytest.raises(exc.LXDUnavailable) as caught:
        await lxd.get("/1.0")
    assert caught.value.status_code == 503
    await lxd.close()


async def test_missing_socket_is_503(make_settings: Callable[..., Settings], tmp_path: Any) -> None:
    lxd = LXDClient(make_settings(LXD_SOCKET_PATH=str(tmp_path / "missing.socket")))
    with pytest.raises(exc.LXDUnavailable):
        await lxd.get("/1.0")
    await lxd.close()


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"<html>not json</html>"),
        httpx.Response(200, json=["no", "envelope"]),
        httpx.Response(200, json={"type": "weird", "metadata": {}}),
        httpx.Response(202, json={"type": "async", "metadata": {}}),
        httpx.Response(500, json={"type": "error", "error_code": "x", "error": 3}),
    ],
    ids=["not-json", "no-envelope", "unknown-type", "async-without-operation", "bad-error"],
)
async def test_malformed_replies_are_502(
    make_settings: Callable[..., Settings], reply: httpx.Response
) -> None:
    lxd = make_client(make_settings, lambda _: reply)
    with pytest.raises(exc.LXDBadGateway) as caught:
        await lxd.get("/1.0")
    assert caught.value.status_code == 502
    await lxd.close()


async def test_plain_text_error_keeps_its_status(make_settings: Callable[..., Settings]) -> None:
    lxd = make_client(make_settings, lambda _: httpx.Response(400, text="Missing upgrade header"))
    with pytest.raises(exc.LXDBadRequest, match="Missing upgrade header"):
        await lxd.get("/1.0/events")
    await lxd.close()


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "",
        "a/b",
        "%2F",
        "a%2e%2e",
        "x?recursion=1",
        "x#frag",
        "a\\b",
        "a\x00b",
        "x" * 300,
    ],
)
def test_traversal_names_are_rejected(name: str) -> None:
    with pytest.raises(exc.InvalidNameError):
        lxd_path("instances", name)


async def test_rejected_names_send_no_request(make_settings: Callable[..., Settings]) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=envelope())

    lxd = make_client(make_settings, handler)
    for name in ("..", "../../1.0/certificates", "a/b"):
        with pytest.raises(exc.InvalidNameError):
            await lxd.get(lxd_path("instances", name))
    assert sent == []
    await lxd.close()


def test_segments_are_percent_encoded() -> None:
    assert lxd_path("images", "aliases", "my alias:1") == "/1.0/images/aliases/my%20alias%3A1"
    assert check_segment("web-1") == "web-1"


async def test_query_parameters(make_settings: Callable[..., Settings]) -> None:
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.url.params)
        return httpx.Response(200, json=envelope(metadata=[]))

    lxd = make_client(make_settings, handler)
    await lxd.get(
        lxd_path("instances"),
        project="p",
        target="node1",
        params={"recursion": 1, "filter": "status eq Running", "all-projects": False, "x": None},
    )
    assert seen == {
        "project": "p",
        "target": "node1",
        "recursion": "1",
        "filter": "status eq Running",
        "all-projects": "false",
    }
    await lxd.close()


async def test_stream_raises_before_body_and_closes(
    make_settings: Callable[..., Settings],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("missing"):
            body = envelope("error", 0, error_code=404, error="not found")
            return httpx.Response(404, content=json.dumps(body).encode())
        return httpx.Response(200, stream=httpx.ByteStream(b"x" * (3 * 1024 * 1024 + 5)))

    lxd = make_client(make_settings, handler)
    with pytest.raises(exc.LXDNotFound):
        async with lxd.stream(lxd_path("instances", "missing")):
            pass
    total = 0
    async with lxd.stream(lxd_path("instances", "big")) as response:
        async for chunk in lxd.iter_bytes(response):
            total += len(chunk)
    assert total == 3 * 1024 * 1024 + 5
    assert response.is_closed
    await lxd.close()
