"""The read model across a real LXD restart, in both modes (issue 15: "after an LXD restart the
model is rebuilt").

The test daemon is stopped with SIGTERM (LXD's own "exit, leave the instances be") and started
again by the sandbox script. While it is down a read is LXD's 503, never the model's memory;
a change made as soon as LXD is back, before the model's stream may have reconnected, is in the
first read once the stream is up again: the model was dropped with the old stream and reloaded.
It needs the project's own sandbox daemon (an LXD you run yourself is not restarted).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.services.readmodel import ReadModel
from tests.support.lxd_sandbox import TEST_SANDBOX_PORT, LXDEnv, start_sandbox
from tests.support.waiting import caught_up, wait_until

pytestmark = pytest.mark.integration

V1 = "/api/v1"


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


async def test_the_model_is_rebuilt_after_lxd_restarts(
    app: FastAPI,
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    stopped_instance: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    if not lxd_env.lxd_dir:
        pytest.skip("LXD_TEST_SOCKET names a daemon of your own: it is not restarted here")
    model: ReadModel = app.state.read_model
    viewer = auth_headers("viewer")
    path = f"{V1}/instances/{stopped_instance}"
    await wait_until(lambda: model.connected, 30)
    before = await client.get(path, headers=viewer)
    assert before.status_code == 200, before.text
    assert "Age" in before.headers  # answered by the model
    epoch = model.epoch

    lxd_dir = Path(lxd_env.lxd_dir)
    pid = int((lxd_dir / "lxd.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    await wait_until(lambda: not alive(pid), 60)
    await wait_until(lambda: not model.connected, 10)
    assert model.state()["projects"] == {}  # dropped with the stream
    down = await client.get(path, headers=viewer)
    assert down.status_code == 503, down.text  # LXD's answer, not the model's memory
    assert down.json()["code"] == "lxd_unavailable"

    await asyncio.to_thread(start_sandbox, lxd_dir, TEST_SANDBOX_PORT)
    reply = await lxd_raw.patch(
        f"/1.0/instances/{stopped_instance}", json={"config": {"user.after": "restart"}}
    )
    assert reply.status_code == 200, reply.text
    await wait_until(lambda: model.connected and model.epoch > epoch, 60)
    await caught_up(app, lxd_raw, stopped_instance)
    after = await client.get(path, headers=viewer)
    assert after.status_code == 200, after.text
    assert "Age" in after.headers
    assert after.json()["config"]["user.after"] == "restart"
    items = await client.get(f"{V1}/instances", params={"limit": 1000}, headers=viewer)
    assert "Age" in items.headers
    listed = {item["name"]: item for item in items.json()["items"]}
    assert listed[stopped_instance]["config"]["user.after"] == "restart"
