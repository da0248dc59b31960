"""The raw LXD client against the real daemon, over the unix socket and over mTLS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from app.core.config import Settings
from app.errors import InvalidNameError, LXDNotFound
from app.lxd import LXDClient, lxd_path
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import delete_instance


@pytest.fixture
async def lxd(settings: Settings) -> AsyncIterator[LXDClient]:
    client = LXDClient(settings)
    yield client
    await client.close()


async def test_server_info_is_trusted(lxd: LXDClient, settings: Settings) -> None:
    reply = await lxd.get("/1.0")
    assert reply.metadata["auth"] == "trusted"
    assert reply.metadata["api_version"] == "1.0"
    assert lxd.mode == settings.LXD_CONNECTION_MODE


async def test_instance_round_trip(
    lxd: LXDClient,
    lxd_env: LXDEnv,
    lxd_raw: httpx.AsyncClient,
    unique: Callable[[str], str],
) -> None:
    name = unique("rt")
    try:
        reply = await lxd.post(
            lxd_path("instances"),
            json_body={"name": name, "source": {"type": "image", "alias": lxd_env.image_alias}},
        )
        assert reply.is_async
        operation = await reply.started().get(wait=60)
        assert operation["status"] == "Success", operation

        listed = await lxd.get(lxd_path("instances"), params={"recursion": 0})
        assert f"/1.0/instances/{name}" in listed.metadata
        seen = await lxd_raw.get(f"/1.0/instances/{name}")
        assert seen.json()["metadata"]["status"] == "Stopped"

        reply = await lxd.delete(lxd_path("instances", name))
        operation = await reply.started().get(wait=60)
        assert operation["status"] == "Success"
        assert (await lxd_raw.get(f"/1.0/instances/{name}")).status_code == 404
        with pytest.raises(LXDNotFound):
            await lxd.get(lxd_path("instances", name))
    finally:
        await delete_instance(lxd_raw, name)


async def test_exec_websocket_round_trip(lxd: LXDClient, instance: str) -> None:
    """A non-interactive exec through LXD's websockets: stdin in, stdout/stderr out, exit code."""
    reply = await lxd.post(
        lxd_path("instances", instance, "exec"),
        json_body={
            "command": ["sh", "-c", "read line; echo out:$line; echo err >&2; exit 7"],
            "interactive": False,
            "wait-for-websocket": True,
        },
    )
    fds = reply.metadata["metadata"]["fds"]
    operation_path = lxd_path("operations", reply.operation_id, "websocket")
    sockets = {fd: await lxd.websocket(operation_path, params={"secret": fds[fd]}) for fd in fds}
    try:
        await sockets["0"].send(b"hello\n")
        await sockets["0"].send("")
        streams: dict[str, bytes] = {"1": b"", "2": b""}
        for fd in streams:
            async for message in sockets[fd]:
                if isinstance(message, str):  # LXD's end-of-stream barrier
                    break
                streams[fd] += message
        operation = await reply.started().get(wait=30)
    finally:
        for socket in sockets.values():
            await socket.close()
    assert streams == {"1": b"out:hello\n", "2": b"err\n"}
    assert operation["metadata"]["return"] == 7


async def test_path_escape_never_reaches_lxd(lxd: LXDClient) -> None:
    with pytest.raises(InvalidNameError):
        await lxd.get(lxd_path("instances", "../certificates"))
