"""The raw LXD client: a plain httpx client on LXD's unix socket, independent of our code, to
do things straight at LXD (as `lxc` would) and to read back what LXD really holds. Integration
tests get one as the `lxd_raw` fixture; `raw_client(socket)` makes another (a second daemon).

Helpers here take that client first. They assert what must hold for the test to mean anything
(an operation that had to succeed did), and clean-up helpers check that nothing is left.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx


def raw_client(socket_path: str, timeout: float = 120) -> httpx.AsyncClient:
    """A client on LXD's unix socket (`async with raw_client(path) as raw:`)."""
    transport = httpx.AsyncHTTPTransport(uds=socket_path)
    return httpx.AsyncClient(transport=transport, base_url="http://lxd", timeout=timeout)


async def lxd_wait(raw: httpx.AsyncClient, reply: httpx.Response, timeout: int = 60) -> Any:
    """Wait for the operation an async LXD reply started; return the finished operation."""
    body = reply.json()
    assert body["type"] == "async", body
    done = await raw.get(f"{body['operation']}/wait", params={"timeout": timeout})
    return done.json()["metadata"]


async def lxd_instance(raw: httpx.AsyncClient, name: str, project: str = "default") -> Any:
    """LXD's whole reply for an instance (the envelope: `metadata` is the instance), or None."""
    reply = await raw.get(f"/1.0/instances/{name}", params={"project": project})
    return reply.json() if reply.status_code == 200 else None


async def create_instance(
    raw: httpx.AsyncClient,
    name: str,
    *,
    image: str,
    project: str = "default",
    start: bool = True,
) -> None:
    """Create (and start) a container straight through LXD, not through our API."""
    body = {"name": name, "source": {"type": "image", "alias": image}}
    reply = await raw.post("/1.0/instances", params={"project": project}, json=body)
    op = await lxd_wait(raw, reply)
    assert op["status"] == "Success", op
    if start:
        reply = await raw.put(
            f"/1.0/instances/{name}/state", params={"project": project}, json={"action": "start"}
        )
        op = await lxd_wait(raw, reply)
        assert op["status"] == "Success", op


async def delete_instance(raw: httpx.AsyncClient, name: str, project: str = "default") -> None:
    """Stop (hard) and delete an instance if it is still there."""
    params = {"project": project}
    reply = await raw.put(
        f"/1.0/instances/{name}/state", params=params, json={"action": "stop", "force": True}
    )
    if reply.status_code == 202:
        await lxd_wait(raw, reply)
    reply = await raw.delete(f"/1.0/instances/{name}", params=params)
    if reply.status_code == 202:
        await lxd_wait(raw, reply)


async def remove_project(raw: httpx.AsyncClient, name: str) -> None:
    """Delete a test project and every instance in it, and check that it is gone."""
    reply = await raw.get("/1.0/instances", params={"project": name})
    for url in reply.json().get("metadata") or []:
        # "/1.0/instances/web1?project=p": the name is the last path segment, without the query.
        await delete_instance(raw, urlsplit(url).path.rsplit("/", 1)[-1], project=name)
    await raw.delete(f"/1.0/projects/{name}")
    gone = await raw.get(f"/1.0/projects/{name}")
    assert gone.status_code == 404, f"project {name} left behind: {gone.text}"
