"""Metrics without LXD: `GET /metrics` (off, its token, what it counts, by route template
and LXD endpoint, never a name), the endpoint templates, and `GET /metrics/lxd` cut down to
the caller's projects from a mocked LXD's metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from app.core.config import Settings
from app.metrics import lxd_endpoint
from tests.support.auth import auth_for
from tests.support.lxd_replies import error, sync

METRICS_TOKEN = "m" * 32
V1 = "/api/v1"

LXD_METRICS = """\
# HELP lxd_cpu_seconds_total The total number of CPU time used in seconds.
# TYPE lxd_cpu_seconds_total counter
lxd_cpu_seconds_total{cpu="0",mode="user",name="web1",project="default",type="container"} 1.5
lxd_cpu_seconds_total{cpu="0",mode="user",name="app1",project="p1",type="container"} 2.5
lxd_cpu_seconds_total{cpu="0",mode="user",name="db1",project="p2",type="container"} 3.5
# HELP lxd_procs_total The number of running processes.
# TYPE lxd_procs_total gauge
lxd_procs_total{name="db1",project="p2",type="container"} 7
# HELP lxd_uptime_seconds The daemon uptime in seconds.
# TYPE lxd_uptime_seconds gauge
lxd_uptime_seconds 1234
"""


def families(text: str) -> dict[str, list[Any]]:
    """name -> samples, parsed by prometheus-client (what a scraper would do)."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def sample_value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def lxd(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/1.0/metrics":
        return httpx.Response(200, stream=httpx.ByteStream(LXD_METRICS.encode()))
    if path == "/1.0/instances/web1":
        return sync({"name": "web1", "config": {}})
    if path.startswith("/1.0/projects/"):
        name = path.rsplit("/", 1)[-1]
        meta = {"name": name, "config": {}, "description": "", "used_by": []}
        return sync(meta)
    return error(404, "Not Found")


@pytest.fixture
async def metrics_app(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Settings]
) -> FastAPI:
    app: FastAPI = await make_unit_app(
        settings=make_settings(METRICS_TOKEN=METRICS_TOKEN), lxd_handler=lxd
    )
    return app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


# --- GET /metrics --------------------------------------------------------------------------
async def test_metrics_are_off_without_a_token(unit_client: httpx.AsyncClient) -> None:
    reply = await unit_client.get("/metrics", headers={"Authorization": "Bearer anything"})
    assert reply.status_code == 404
    assert reply.json()["code"] == "not_found"


async def test_metrics_need_the_metrics_token_not_a_user_token(metrics_app: FastAPI) -> None:
    admin = (await auth_for(metrics_app)).headers("admin")
    async with client_of(metrics_app) as client:
        for headers in ({}, {"Authorization": "Bearer " + "x" * 32}, admin):
            reply = await client.get("/metrics", headers=headers)
            assert reply.status_code == 401, headers
            assert reply.headers["WWW-Authenticate"] == "Bearer"
            assert reply.json()["code"] == "unauthorized"
        reply = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")


async def test_metrics_count_requests_by_route_template_and_lxd_calls_by_endpoint(
    metrics_app: FastAPI,
) -> None:
    viewer = (await auth_for(metrics_app)).headers("viewer")
    scrape = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with client_of(metrics_app) as client:
        for _ in range(3):
            assert (await client.get("/health/live")).status_code == 200
        reply = await client.get(f"{V1}/instances/web1", headers=viewer)
        assert reply.status_code == 200, reply.text
        assert (await client.get(f"{V1}/instances/nope1", headers=viewer)).status_code == 404
        assert (await client.get("/no/such/secret-path")).status_code == 404
        text = (await client.get("/metrics", headers=scrape)).text

    assert sample_value(
        text, "lxd_api_http_requests_total", method="GET", route="/health/live", status="200"
    ) == pytest.approx(3)
    route = "/api/v1/instances/{name}"
    assert sample_value(text, "lxd_api_http_requests_total", route=route, status="200") == 1
    assert sample_value(text, "lxd_api_http_requests_total", route=route, status="404") == 1
    assert sample_value(text, "lxd_api_http_requests_total", route="unmatched") == 1
    assert sample_value(text, "lxd_api_http_request_duration_seconds_count", route=route) == 2
    endpoint = "/1.0/instances/{name}"
    assert (
        sample_value(
            text, "lxd_api_lxd_requests_total", method="GET", endpoint=endpoint, status="200"
        )
        >= 1
    )
    assert sample_value(text, "lxd_api_lxd_requests_total", endpoint=endpoint, status="404") >= 1
    # Names never become labels: not the instance, not the unknown path.
    assert "web1" not in text
    assert "nope1" not in text
    assert "secret-path" not in text
    # What is read at scrape time is there too.
    for name in ("lxd_api_ws_sessions", "lxd_api_event_subscribers", "lxd_api_audit_queue"):
        assert name in families(text)
    assert sample_value(text, "lxd_api_ws_sessions", kind="exec") == 0


def test_a_short_metrics_token_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN must be at least 24"):
        make_settings(METRICS_TOKEN="short")
    assert make_settings(METRICS_TOKEN="").METRICS_TOKEN.get_secret_value() == ""


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/1.0", "/1.0"),
        ("/1.0/instances", "/1.0/instances"),
        ("/1.0/instances/web1", "/1.0/instances/{name}"),
        ("/1.0/instances/web1/state", "/1.0/instances/{name}/state"),
        ("/1.0/instances/web1/snapshots/s1", "/1.0/instances/{name}/snapshots/{name}"),
        ("/1.0/instances/web1/logs/lxc.log", "/1.0/instances/{name}/logs/{name}"),
        ("/1.0/instances/web1/backups/b1/export", "/1.0/instances/{name}/backups/{name}/export"),
        (
            "/1.0/storage-pools/default/volumes/custom/v1",
            "/1.0/storage-pools/{name}/volumes/custom/{name}",
        ),
        ("/1.0/images/aliases/busybox", "/1.0/images/aliases/{name}"),
        ("/1.0/images/0123abcd", "/1.0/images/{name}"),
        ("/1.0/operations/5e7c-11/wait", "/1.0/operations/{name}/wait"),
        ("/1.0/events", "/1.0/events"),
        ("/1.0/Weird%20Name", "/1.0/{name}"),
        ("/other", "other"),
    ],
)
def test_lxd_endpoint_templates(path: str, endpoint: str) -> None:
    assert lxd_endpoint(path) == endpoint


# --- GET /metrics/lxd ------------------------------------------------------------------------
async def test_lxd_metrics_show_only_the_callers_projects(metrics_app: FastAPI) -> None:
    auth = await auth_for(metrics_app)
    admin, viewer, tenant = auth.headers("admin"), auth.headers("viewer"), auth.headers("none")
    async with client_of(metrics_app) as client:
        reply = await client.put(
            f"{V1}/users/test-none/projects/p1", json={"role": "viewer"}, headers=admin
        )
        assert reply.status_code == 200, reply.text

        every = await client.get(f"{V1}/metrics/lxd", headers=viewer)
        assert every.status_code == 200
        assert every.headers["content-type"].startswith("text/plain")
        seen = families(every.text)
        projects = {s.labels["project"] for s in seen["lxd_cpu_seconds"]}
        assert projects == {"default", "p1", "p2"}
        assert "lxd_uptime_seconds" in seen  # server-wide: a global viewer

        mine = families((await client.get(f"{V1}/metrics/lxd", headers=tenant)).text)
        assert {s.labels["project"] for s in mine["lxd_cpu_seconds"]} == {"p1"}
        assert "lxd_procs_total" not in mine  # only p2 had it: the family is gone
        assert "lxd_uptime_seconds" not in mine  # nothing about the server

        one = families((await client.get(f"{V1}/metrics/lxd?project=p2", headers=viewer)).text)
        assert {s.labels["project"] for s in one["lxd_cpu_seconds"]} == {"p2"}
        assert "lxd_uptime_seconds" not in one

        hidden = await client.get(f"{V1}/metrics/lxd?project=p2", headers=tenant)
        assert hidden.status_code == 404
        bad = await client.get(f"{V1}/metrics/lxd?project=../x", headers=viewer)
        assert bad.status_code == 422
        assert (await client.get(f"{V1}/metrics/lxd")).status_code == 401


async def test_lxd_metrics_that_do_not_parse_are_a_502(
    make_unit_app: Callable[..., Any],
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/1.0/metrics":
            return httpx.Response(200, stream=httpx.ByteStream(b"lxd_x{project=\n"))
        return lxd(request)

    app: FastAPI = await make_unit_app(lxd_handler=broken)
    viewer = (await auth_for(app)).headers("viewer")
    async with client_of(app) as client:
        reply = await client.get(f"{V1}/metrics/lxd", headers=viewer)
    assert reply.status_code == 502
    assert reply.json()["code"] == "lxd_bad_reply"
    assert "lxd_x" not in json.dumps(reply.json())
