"""Checks of this API's own answers, shared by the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

# The `auth_headers` fixture: `auth_headers("operator")` -> {"Authorization": "Bearer ..."}.
Headers = Callable[..., dict[str, str]]


def assert_error(reply: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """`reply` is an error of ours with `status` (and `code`), in the contract's shape."""
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"detail", "code", "request_id"}, body
    if code is not None:
        assert body["code"] == code, body
    return body


async def wait_ref(raw: httpx.AsyncClient, reply: httpx.Response, timeout: int = 60) -> Any:
    """Wait (straight on LXD) for the operation a 202 of ours points at."""
    assert reply.status_code == 202, reply.text
    ref = reply.json()
    assert set(ref) == {"operation_id", "operation_url", "poll_url", "wait_url"}
    assert ref["poll_url"] == f"/api/v1/operations/{ref['operation_id']}"
    done = await raw.get(f"{ref['operation_url']}/wait", params={"timeout": timeout})
    return done.json()["metadata"]
