"""Run api.http top to bottom against the real LXD, in both connection modes.

The collection is the README's example set: every request in it must answer as it says (no 5xx,
no 4xx unless marked `# @expect`), and the scenario must leave nothing behind in LXD.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from scripts.http_collection import load, substitute
from tests.support.auth import TEST_USER_PASSWORD
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import delete_instance

API_HTTP = Path(__file__).resolve().parents[2] / "api.http"
# The names the scenario creates: made unique, so runs side by side never collide.
UNIQUE_NAMES = (
    "project",
    "projectRenamed",
    "instance",
    "instanceRenamed",
    "alias",
    "aliasRenamed",
    "pool",
    "volume",
    "volumeRenamed",
    "profile",
    "profileRenamed",
    "newUser",
)


def overrides(lxd_env: LXDEnv) -> dict[str, str]:
    tag = uuid.uuid4().hex[:6]
    values = {name: f"h{tag}-{name.lower()}"[:40] for name in UNIQUE_NAMES}
    values.update(
        baseUrl="http://testserver",
        username="test-admin",
        password=TEST_USER_PASSWORD,
        image=lxd_env.image_alias,
        # Bridge names are global to the kernel and at most 15 characters.
        network=f"ah{tag}a",
        networkRenamed=f"ah{tag}b",
    )
    return values


async def leftovers(raw: httpx.AsyncClient, values: dict[str, str]) -> list[str]:
    checks = {
        "instance": f"/1.0/instances/{values['instance']}",
        "instanceRenamed": f"/1.0/instances/{values['instanceRenamed']}",
        "project": f"/1.0/projects/{values['project']}",
        "projectRenamed": f"/1.0/projects/{values['projectRenamed']}",
        "pool": f"/1.0/storage-pools/{values['pool']}",
        "network": f"/1.0/networks/{values['network']}",
        "networkRenamed": f"/1.0/networks/{values['networkRenamed']}",
        "alias": f"/1.0/images/aliases/{values['alias']}",
        "aliasRenamed": f"/1.0/images/aliases/{values['aliasRenamed']}",
        "profile": f"/1.0/profiles/{values['profile']}",
        "profileRenamed": f"/1.0/profiles/{values['profileRenamed']}",
    }
    found = []
    for what, path in checks.items():
        if (await raw.get(path)).status_code != 404:
            found.append(what)
    return found


async def clean_up(raw: httpx.AsyncClient, values: dict[str, str]) -> None:
    """After a failed run: remove what the scenario made, so the shared daemon stays clean."""
    for name in (values["instance"], values["instanceRenamed"]):
        await delete_instance(raw, name)
    for volume in (values["volume"], values["volumeRenamed"]):
        await raw.delete(f"/1.0/storage-pools/{values['pool']}/volumes/custom/{volume}")
    await raw.delete(f"/1.0/storage-pools/{values['pool']}")
    for key in ("network", "networkRenamed"):
        await raw.delete(f"/1.0/networks/{values[key]}")
    for key in ("alias", "aliasRenamed"):
        await raw.delete(f"/1.0/images/aliases/{values[key]}")
    for key in ("profile", "profileRenamed"):
        await raw.delete(f"/1.0/profiles/{values[key]}")
    for key in ("project", "projectRenamed"):
        await raw.delete(f"/1.0/projects/{values[key]}")


async def test_api_http_runs_clean(
    client: httpx.AsyncClient,
    app_auth: Any,
    lxd_env: LXDEnv,
    lxd_raw: httpx.AsyncClient,
) -> None:
    collection = load(API_HTTP)
    variables = {**collection.variables, **overrides(lxd_env)}
    responses: dict[str, httpx.Response] = {}
    ran = 0
    try:
        for request in collection.requests:
            if request.method == "WEBSOCKET":
                continue  # covered by the WebSocket tests
            url = substitute(request.url, variables, responses)
            headers = {k: substitute(v, variables, responses) for k, v in request.headers.items()}
            body = substitute(request.body, variables, responses).encode()
            reply = await client.request(request.method, url, headers=headers, content=body)
            ran += 1
            label = f"{request.title}: {request.method} {url} -> {reply.status_code} {reply.text}"
            if request.expect:
                assert reply.status_code in request.expect, label
            else:
                assert reply.status_code < 400, label
            if request.name:
                responses[request.name] = reply
    finally:
        left = await leftovers(lxd_raw, variables)
        if left:
            await clean_up(lxd_raw, variables)
    assert ran > 90
    assert left == [], f"the api.http scenario left these behind in LXD: {left}"
