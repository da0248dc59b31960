"""Metrics against the real LXD, in both modes: `GET /metrics` parses with prometheus-client
and counts the requests this test made (and the LXD calls behind them, and an open session);
`GET /api/v1/metrics/lxd` shows a tenant its own project's instances and nothing else."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.support.auth import TEST_METRICS_TOKEN, TEST_USER_PASSWORD
from tests.support.lxd_sandbox import LXDEnv
from tests.support.raw_lxd import create_instance, remove_project

pytestmark = pytest.mark.integration

V1 = "/api/v1"
SCRAPE = {"Authorization": f"Bearer {TEST_METRICS_TOKEN}"}


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += float(sample.value)
    return total


async def scrape(client: httpx.AsyncClient) -> str:
    reply = await client.get("/metrics", headers=SCRAPE)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return reply.text


async def test_metrics_count_the_requests_and_lxd_calls_of_this_test(
    client: httpx.AsyncClient,
    live_url: str,
    instance: str,
    auth_headers: Callable[..., dict[str, str]],
    ws_token: Callable[..., str],
) -> None:
    viewer = auth_headers("viewer")
    route, endpoint = f"{V1}/instances/{{name}}", "/1.0/instances/{name}"
    before = await scrape(client)
    fresh = {**viewer, "Cache-Control": "no-cache"}  # past the read model: LXD answers
    for _ in range(3):
        reply = await client.get(f"{V1}/instances/{instance}", headers=fresh)
        assert reply.status_code == 200, reply.text
    missing = await client.get(f"{V1}/instances/no-such-{instance}", headers=fresh)
    assert missing.status_code == 404
    refused = await client.get("/metrics", headers=viewer)  # a user token does not open it
    assert refused.status_code == 401

    async with connect(
        f"{live_url}{V1}/operations/ws?token={ws_token('viewer')}&type=lifecycle",
        ping_interval=None,
        open_timeout=30,
    ):
        await asyncio.sleep(0.5)  # the route joined the hub and holds its session
        after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("lxd_api_http_requests_total", route=route, status="200") == 3
    assert delta("lxd_api_http_requests_total", route=route, status="404") == 1
    assert delta("lxd_api_http_requests_total", route="/metrics", status="401") == 1
    assert delta("lxd_api_http_request_duration_seconds_count", route=route) == 4
    assert delta("lxd_api_lxd_requests_total", endpoint=endpoint, status="200") >= 3
    assert delta("lxd_api_lxd_requests_total", endpoint=endpoint, status="404") >= 1
    assert value(after, "lxd_api_ws_sessions", kind="events") >= 1
    assert value(after, "lxd_api_event_subscribers") >= 1
    assert instance not in after  # names are never labels


async def test_lxd_metrics_of_a_tenant_show_only_its_project(
    client: httpx.AsyncClient,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    instance: str,
    auth_headers: Callable[..., dict[str, str]],
    unique: Callable[[str], str],
) -> None:
    admin, viewer = auth_headers("admin"), auth_headers("viewer")
    project, mine, username = unique("mp"), unique("mi"), unique("mtenant")
    shared = {"features.images": "false", "features.profiles": "false"}
    reply = await lxd_raw.post("/1.0/projects", json={"name": project, "config": shared})
    assert reply.status_code in (200, 201), reply.text
    try:
        await create_instance(lxd_raw, mine, image=lxd_env.image_alias, project=project)
        body = {"username": username, "password": TEST_USER_PASSWORD, "role": "none"}
        reply = await client.post(f"{V1}/auth/register", json=body, headers=admin)
        assert reply.status_code == 201, reply.text
        reply = await client.put(
            f"{V1}/users/{username}/projects/{project}", json={"role": "viewer"}, headers=admin
        )
        assert reply.status_code == 200, reply.text
        login = await client.post(
            f"{V1}/auth/login", json={"username": username, "password": TEST_USER_PASSWORD}
        )
        tenant = {"Authorization": f"Bearer {login.json()['access_token']}"}

        # LXD refreshes its figures every few seconds: wait for the new instance to show.
        async with asyncio.timeout(60):
            while True:
                reply = await client.get(f"{V1}/metrics/lxd", headers=tenant)
                assert reply.status_code == 200, reply.text
                if f'name="{mine}"' in reply.text:
                    break
                await asyncio.sleep(1)
        seen = {
            sample.labels.get("project")
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples
        }
        assert seen == {project}
        assert instance not in reply.text  # the default project's instance

        every = await client.get(f"{V1}/metrics/lxd", headers=viewer)
        assert f'name="{instance}"' in every.text
        assert f'name="{mine}"' in every.text
        narrowed = await client.get(f"{V1}/metrics/lxd?project={project}", headers=viewer)
        assert f'name="{instance}"' not in narrowed.text
        hidden = await client.get(f"{V1}/metrics/lxd?project=default", headers=tenant)
        assert hidden.status_code == 404
        other = f"nope{secrets.token_hex(3)}"
        assert (
            await client.get(f"{V1}/metrics/lxd?project={other}", headers=tenant)
        ).status_code == 404
    finally:
        await client.delete(f"{V1}/users/{username}", headers=admin)
        await remove_project(lxd_raw, project)
