"""Integration fixtures: everything here talks to the real LXD daemon.

* `lxd_raw`: a plain httpx client on LXD's unix socket, independent of our code, to read back
  what really changed in LXD.
* `unique(prefix)`: a fresh, valid LXD name.
* `auth_headers(role)` (from the root conftest) for requests through the API.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.lxd_sandbox import LXDEnv

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def lxd_raw(lxd_env: LXDEnv) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(uds=lxd_env.socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://lxd", timeout=120) as raw:
        yield raw


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


async def lxd_wait(raw: httpx.AsyncClient, reply: httpx.Response, timeout: int = 60) -> Any:
    """Wait for the operation an async LXD reply started; return the finished operation."""
    body = reply.json()
    assert body["type"] == "async", body
    done = await raw.get(f"{body['operation']}/wait", params={"timeout": timeout})
    return done.json()["metadata"]
