"""The shared pieces of `app.lxd` and `app.errors`: an operation waited on once for every
service (a timeout is always a 504), the 404 rewording, the transport-error mapping and the
ETag retry loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app import errors
from app.core.config import Settings
from app.lxd import LXDClient, edit_with_etag, lxd_path
from app.lxd.errors import transport_errors
from app.services import storage


def envelope(kind: str = "sync", status: int = 200, **extra: Any) -> dict[str, Any]:
    body = {"type": kind, "status_code": status, "operation": "", "error_code": 0, "error": ""}
    return {**body, "metadata": None, **extra}


def running(op_id: str = "op-1") -> dict[str, Any]:
    return {"id": op_id, "status": "Running", "status_code": 103}


def lxd_with(
    make_settings: Callable[..., Settings], wait_answer: dict[str, Any], seen: list[str]
) -> LXDClient:
    """An LXD that starts `op-1` for every write and answers its `/wait` with `wait_answer`."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/1.0/operations/op-1/wait":
            return httpx.Response(200, json=envelope(metadata=wait_answer))
        body = envelope("async", 100, operation="/1.0/operations/op-1", metadata=running())
        return httpx.Response(202, json=body)

    return LXDClient(make_settings(), transport=httpx.MockTransport(handler))


async def test_a_write_hands_back_its_operation(make_settings: Callable[..., Settings]) -> None:
    seen: list[str] = []
    done = {"id": "op-1", "status": "Success", "status_code": 200, "metadata": {"x": 1}}
    lxd = lxd_with(make_settings, done, seen)
    reply = await lxd.post(lxd_path("instances"), json_body={})
    assert reply.started().id == "op-1"
    assert await reply.wait(30) == done
    assert seen[-1] == "GET /1.0/operations/op-1/wait"
    await lxd.close()


async def test_an_operation_still_running_after_the_timeout_is_a_504(
    make_settings: Callable[..., Settings],
) -> None:
    """The same for every service: here a storage pool write (it used to be a 502 there)."""
    lxd = lxd_with(make_settings, running(), [])
    with pytest.raises(errors.LXDTimeout) as caught:
        await storage.delete_pool(lxd, project="default", pool="p1")
    assert caught.value.status_code == 504
    assert "op-1" in caught.value.detail
    await lxd.close()


async def test_a_failed_operation_raises_its_reason(make_settings: Callable[..., Settings]) -> None:
    failed = {"id": "op-1", "status": "Failure", "status_code": 400, "err": "Instance not found"}
    lxd = lxd_with(make_settings, failed, [])
    reply = await lxd.post(lxd_path("instances"), json_body={})
    with pytest.raises(errors.LXDNotFound, match="Instance not found"):
        await reply.wait(30)
    # Reading it is not waiting for it: the failure is shown, not raised.
    assert (await reply.started().get(wait=30))["status_code"] == 400
    await lxd.close()


def test_reword_not_found_names_the_object() -> None:
    with (
        pytest.raises(errors.LXDNotFound) as caught,
        errors.reword_not_found("Instance", "web1", in_project="p1"),
    ):
        raise errors.LXDNotFound("not found")
    assert caught.value.detail == "Instance 'web1' not found in project 'p1'"
    assert isinstance(caught.value.__cause__, errors.LXDNotFound)
    with (
        pytest.raises(errors.LXDNotFound, match=r"^Project 'p1' not found$"),
        errors.reword_not_found("Profile", "x", or_project="p1"),
    ):
        raise errors.LXDNotFound("Project not found")
    with (
        pytest.raises(errors.LXDConflict),  # anything else passes unchanged
        errors.reword_not_found("Instance", "web1"),
    ):
        raise errors.LXDConflict("taken")


@pytest.mark.parametrize(
    ("raised", "midway", "expected"),
    [
        (httpx.ReadTimeout("slow"), False, errors.LXDTimeout),
        (httpx.ConnectError("refused"), False, errors.LXDUnavailable),
        (httpx.RemoteProtocolError("garbage"), False, errors.LXDBadGateway),
        (httpx.ReadTimeout("slow"), True, errors.LXDTimeout),
        (httpx.ReadError("reset"), True, errors.LXDBadGateway),
    ],
)
def test_transport_errors_are_typed(
    raised: Exception, midway: bool, expected: type[errors.LXDError]
) -> None:
    with pytest.raises(expected), transport_errors("GET", "/1.0", midway=midway):
        raise raised


async def test_edit_with_etag_retries_conflicts_then_gives_up() -> None:
    calls: list[int] = []

    async def conflicting() -> str:
        calls.append(1)
        raise errors.LXDPreconditionFailed("ETag mismatch")

    with pytest.raises(errors.ConflictError, match="kept changing"):
        await edit_with_etag(
            conflicting, attempts=3, gave_up=lambda _: errors.ConflictError("kept changing")
        )
    assert len(calls) == 3

    async def refused() -> str:
        calls.append(1)
        raise errors.LXDBadRequest("bad config")

    calls.clear()
    with pytest.raises(errors.LXDBadRequest):  # not a conflict: raised at once
        await edit_with_etag(refused, attempts=3, gave_up=lambda e: e)
    assert len(calls) == 1

    tries = iter([errors.LXDPreconditionFailed("stale"), None])

    async def second_time_lucky() -> str:
        problem = next(tries)
        if problem is not None:
            raise problem
        return "written"

    assert await edit_with_etag(second_time_lucky, attempts=3, gave_up=lambda e: e) == "written"
