"""`POST /instances/{name}/exec` (recorded output) against the real LXD, in both modes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


async def exec_logs(raw: httpx.AsyncClient, name: str) -> list[str]:
    """LXD's recorded output files still kept for the instance."""
    reply = await raw.get(f"/1.0/instances/{name}/logs")
    return [url for url in reply.json()["metadata"] if "exec" in url.rsplit("/", 1)[-1]]


async def test_waited_command_gives_stdout_stderr_and_code_and_cleans_up(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
) -> None:
    body = {
        "command": ["sh", "-c", 'echo "out $GREETING"; pwd; echo err >&2; exit 4'],
        "environment": {"GREETING": "hello"},
        "cwd": "/tmp",
    }
    reply = await client.post(
        f"/api/v1/instances/{instance}/exec", json=body, headers=auth_headers("operator")
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["return_code"] == 4
    assert result["stdout"] == "out hello\n/tmp\n"
    assert result["stderr"] == "err\n"
    assert result["output"] == "text"
    assert result["truncated"] is False
    assert await exec_logs(lxd_raw, instance) == []


async def test_base64_output_is_byte_exact_and_large_output_intact(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], instance: str
) -> None:
    script = "printf '\\377\\000\\001abc'; head -c 3000000 /dev/zero | tr '\\000' 'x' >&2"
    reply = await client.post(
        f"/api/v1/instances/{instance}/exec",
        json={"command": ["sh", "-c", script], "output": "base64"},
        headers=auth_headers("operator"),
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert base64.b64decode(result["stdout"]) == b"\xff\x00\x01abc"
    assert base64.b64decode(result["stderr"]) == b"x" * 3_000_000
    text = await client.post(
        f"/api/v1/instances/{instance}/exec",
        json={"command": ["printf", "\\377ok"]},
        headers=auth_headers("operator"),
    )
    assert text.json()["stdout"] == "\ufffdok"


async def test_missing_command_reports_127_and_lxd_reason(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
) -> None:
    reply = await client.post(
        f"/api/v1/instances/{instance}/exec",
        json={"command": ["no-such-command-here"]},
        headers=auth_headers("operator"),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["return_code"] == 127
    assert "not found" in reply.json()["error"].lower()
    assert await exec_logs(lxd_raw, instance) == []


async def test_without_wait_answers_202_and_the_operation_has_the_code(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
) -> None:
    reply = await client.post(
        f"/api/v1/instances/{instance}/exec",
        json={"command": ["sh", "-c", "exit 9"], "wait": False},
        headers=auth_headers("operator"),
    )
    assert reply.status_code == 202, reply.text
    ref = reply.json()
    assert set(ref) == {"operation_id", "operation_url", "poll_url", "wait_url"}
    done = await client.get(ref["wait_url"], params={"timeout": 30}, headers=auth_headers("viewer"))
    assert done.status_code == 200
    assert done.json()["status"] == "Success"
    assert done.json()["metadata"]["return"] == 9
    assert await exec_logs(lxd_raw, instance) == []


async def test_timeout_answers_202_and_output_is_deleted_later(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    instance: str,
    lxd_raw: httpx.AsyncClient,
) -> None:
    reply = await client.post(
        f"/api/v1/instances/{instance}/exec",
        json={"command": ["sh", "-c", "echo started; sleep 2"], "timeout": 1},
        headers=auth_headers("operator"),
    )
    assert reply.status_code == 202, reply.text
    operation_id = reply.json()["operation_id"]
    done = await lxd_raw.get(f"/1.0/operations/{operation_id}/wait", params={"timeout": 30})
    assert done.json()["metadata"]["status"] == "Success"
    async with asyncio.timeout(15):
        while await exec_logs(lxd_raw, instance):
            await asyncio.sleep(0.2)


async def test_refusals(
    client: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    stopped_instance: str,
    unique: Callable[[str], str],
) -> None:
    headers = auth_headers("operator")
    body = {"command": ["true"]}
    missing = await client.post(
        f"/api/v1/instances/{unique('nx')}/exec", json=body, headers=headers
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    stopped = await client.post(
        f"/api/v1/instances/{stopped_instance}/exec", json=body, headers=headers
    )
    assert stopped.status_code == 400, stopped.text
    assert "running" in stopped.json()["detail"].lower()
    bad_bodies: list[dict[str, Any]] = [
        {"command": []},
        {"command": ["true"], "cwd": "relative"},
        {"command": ["true"], "environment": {"A=B": "x"}},
        {"command": ["true"], "output": "hex"},
        {"command": ["true"], "surprise": 1},
    ]
    for bad_body in bad_bodies:
        reply = await client.post(
            f"/api/v1/instances/{stopped_instance}/exec", json=bad_body, headers=headers
        )
        assert reply.status_code == 422, bad_body
        assert reply.json()["code"] == "validation_error"
    for bad_name in ("bad..name", "-x", "a" * 64):
        reply = await client.post(f"/api/v1/instances/{bad_name}/exec", json=body, headers=headers)
        assert reply.status_code == 422, bad_name
    # `%2F` is decoded before routing: the path has one segment more and matches no route.
    slash = await client.post("/api/v1/instances/a%2Fb/exec", json=body, headers=headers)
    assert slash.status_code in {404, 422}


async def test_roles(
    client: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], instance: str
) -> None:
    url = f"/api/v1/instances/{instance}/exec"
    assert (await client.post(url, json={"command": ["true"]})).status_code == 401
    viewer = await client.post(url, json={"command": ["true"]}, headers=auth_headers("viewer"))
    assert viewer.status_code == 403
