"""`GET /policy` and `POST /policy/check` against a fake LXD: the shape of the policy, whom it
holds (per role, and with `OPERATOR_POLICY=unrestricted`), a refused body answered with every
violation at once, a copy source's own config and devices, and that a check only reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.policy import Policy, describe
from app.core.config import Settings
from tests.support.auth import auth_for
from tests.support.fake_lxd import FakeLXD, fake_lxd_handler
from tests.support.lxd_replies import sync

POLICY = "/api/v1/policy"
CHECK = "/api/v1/policy/check"
MANAGED = "lxdbr0"
HOST_DISK = {"type": "disk", "source": "/", "path": "/host"}
PRIVILEGED = {
    "name": "priv1",
    "config": {"security.privileged": "true", "volatile.idmap.base": "0", "limits.cpu": "1"},
    "devices": {"host": HOST_DISK},
}
PLAIN = {"name": "web1", "config": {"limits.cpu": "1"}, "devices": {}}

# One of each: a refused key of each kind, a refused device of each kind, a refused source.
REFUSED_BODY: dict[str, Any] = {
    "config": {
        "security.privileged": "true",
        "security.nesting": True,
        "raw.lxc": "lxc.apparmor.profile=unconfined",
        "security.idmap.base": "0",
        "linux.kernel_modules": "overlay",
        "volatile.eth0.hwaddr": "00:16:3e:00:00:01",
        "limits.cpu": "1",
    },
    "devices": {
        "host": HOST_DISK,
        "shifted": {"type": "disk", "pool": "default", "source": "v1", "path": "/v", "shift": "1"},
        "mac": {"type": "nic", "nictype": "macvlan", "parent": "eth0"},
        "kvm": {"type": "unix-char", "path": "/dev/kvm"},
        "sock": {"type": "proxy", "listen": "tcp:0.0.0.0:80", "connect": "unix:/x"},
        "eth1": {"type": "nic", "network": MANAGED},
    },
    "source": {"type": "image", "alias": "x", "server": "https://example.invalid"},
}
REFUSED_FIELDS = {
    "config.security.privileged",
    "config.security.nesting",
    "config.raw.lxc",
    "config.security.idmap.base",
    "config.linux.kernel_modules",
    "config.volatile.eth0.hwaddr",
    "devices.host.source",
    "devices.shifted.shift",
    "devices.mac.nictype",
    "devices.mac.parent",
    "devices.kvm.type",
    "devices.sock.type",
    "source.server",
}
ALLOWED_BODY: dict[str, Any] = {
    "config": {"limits.cpu": "1", "user.note": "x", "security.privileged": "false"},
    "devices": {
        "root": {"type": "disk", "pool": "default", "path": "/"},
        "data": {"type": "disk", "pool": "default", "source": "vol1", "path": "/srv"},
        "eth0": {"type": "nic", "network": MANAGED},
        "eth1": {"type": "nic", "nictype": "bridged", "parent": MANAGED},
        "gone": {"type": "none"},
    },
    "source": {"type": "image", "alias": "busybox"},
    "profiles": ["default"],
}


@pytest.fixture
def fake() -> FakeLXD:
    """Two instances and a managed bridge next to a host interface; records every request."""
    networks = [
        {"name": MANAGED, "managed": True, "type": "bridge"},
        {"name": "eth0", "managed": False, "type": "physical"},
    ]
    snapshot = {"name": "snap0", "config": {}, "devices": {}}
    return FakeLXD(
        {
            ("GET", "/1.0/networks"): lambda _: sync(networks),
            ("GET", "/1.0/instances/priv1"): lambda _: sync(PRIVILEGED),
            ("GET", "/1.0/instances/web1"): lambda _: sync(PLAIN),
            ("GET", "/1.0/instances/web1/snapshots/snap0"): lambda _: sync(snapshot),
        },
        fallback=fake_lxd_handler,
    )


@pytest.fixture
def call(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Settings], fake: FakeLXD
) -> Callable[..., Any]:
    """`await call(method, url, role, json=None, policy="default")` through a unit app."""
    apps: dict[str, FastAPI] = {}

    async def request(
        method: str, url: str, role: str, *, json: Any = None, policy: str = "default"
    ) -> httpx.Response:
        if policy not in apps:
            settings = make_settings(OPERATOR_POLICY=policy)
            apps[policy] = await make_unit_app(settings=settings, lxd_handler=fake)
        app = apps[policy]
        headers = (await auth_for(app)).headers(role)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.request(method, url, json=json, headers=headers)

    return request


def fields(reply: httpx.Response) -> set[str]:
    return {v["field"] for v in reply.json()["violations"]}


# --- GET /policy -------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "held"), [("viewer", True), ("operator", True), ("admin", False)])
async def test_policy_shape_and_held(
    call: Callable[..., Any], fake: FakeLXD, role: str, held: bool
) -> None:
    reply = await call("GET", POLICY, role)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["held"] is held
    assert body["mode"] == "default"
    assert body["applies_to"] == "every role below admin"
    # Everything describe() says, and nothing else but `held`.
    policy = describe(Policy(image_servers=tuple(body["image_servers"])))
    assert {k: v for k, v in body.items() if k != "held"} == policy
    keys = {rule["key"] for rule in body["refused_config"]}
    assert {"security.privileged", "raw.*", "volatile.*", "security.syscalls.intercept.*"} <= keys
    allowed = {rule["type"] for rule in body["devices"] if rule["allowed"]}
    assert allowed == {"disk", "nic", "none"}
    assert "migration" in body["refused_source_types"]
    assert "https://images.linuxcontainers.org" in body["image_servers"]
    assert fake.calls == []  # answered without LXD


async def test_policy_lists_extra_image_servers(
    make_unit_app: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(IMAGE_SERVERS_ALLOWED="https://img.example/, https://b.example")
    app = await make_unit_app(settings=settings)
    headers = (await auth_for(app)).headers("viewer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        reply = await h.get(POLICY, headers=headers)
    assert reply.status_code == 200
    assert {"https://img.example/", "https://b.example"} <= set(reply.json()["image_servers"])


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
async def test_unrestricted_holds_nobody(call: Callable[..., Any], role: str) -> None:
    reply = await call("GET", POLICY, role, policy="unrestricted")
    assert reply.status_code == 200, reply.text
    assert reply.json()["mode"] == "unrestricted"
    assert reply.json()["applies_to"] == "nobody"
    assert reply.json()["held"] is False


async def test_policy_takes_a_project_and_refuses_a_bad_name(call: Callable[..., Any]) -> None:
    assert (await call("GET", f"{POLICY}?project=tenant1", "viewer")).status_code == 200
    bad = await call("GET", f"{POLICY}?project=a%2Fb", "viewer")
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"


# --- POST /policy/check ------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_check_lists_every_violation(
    call: Callable[..., Any], fake: FakeLXD, role: str
) -> None:
    reply = await call("POST", CHECK, role, json=REFUSED_BODY)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["allowed"] is False
    assert fields(reply) == REFUSED_FIELDS
    assert all(v["reason"] for v in body["violations"])
    assert "GET /1.0/networks" in fake.calls  # the NICs need the project's managed networks
    assert fake.writes == []


async def test_check_admin_is_allowed(call: Callable[..., Any], fake: FakeLXD) -> None:
    reply = await call("POST", CHECK, "admin", json=REFUSED_BODY)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"allowed": True, "violations": []}
    assert fake.calls == []  # not held: nothing to gather


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_check_unrestricted_allows_everyone(call: Callable[..., Any], role: str) -> None:
    reply = await call("POST", CHECK, role, json=REFUSED_BODY, policy="unrestricted")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"allowed": True, "violations": []}


async def test_check_allows_a_safe_body(call: Callable[..., Any], fake: FakeLXD) -> None:
    reply = await call("POST", CHECK, "operator", json=ALLOWED_BODY)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"allowed": True, "violations": []}
    assert (await call("POST", CHECK, "operator", json={})).json()["allowed"] is True
    assert fake.writes == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": {"type": "migration", "mode": "pull"}}, "source.type"),
        ({"source": {"type": "image", "alias": "a", "server": "http://10.0.0.1"}}, "source.server"),
        ({"config": {"security.syscalls.intercept.mknod": "true"}}, "config.security."),
        ({"devices": {"g": {"type": "gpu"}}}, "devices.g.type"),
        ({"devices": {"n": {"type": "nic", "network": "eth0"}}}, "devices.n.network"),
    ],
)
async def test_check_refuses_sources_keys_devices(
    call: Callable[..., Any], body: dict[str, Any], field: str
) -> None:
    reply = await call("POST", CHECK, "operator", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["allowed"] is False
    assert any(name.startswith(field) for name in fields(reply)), reply.json()


async def test_check_allows_a_configured_image_server(call: Callable[..., Any]) -> None:
    body = {
        "source": {
            "type": "image",
            "alias": "22.04",
            "server": "HTTPS://Images.linuxcontainers.org/",
        }
    }
    reply = await call("POST", CHECK, "operator", json=body)
    assert reply.json() == {"allowed": True, "violations": []}


async def test_check_copy_counts_the_source(call: Callable[..., Any], fake: FakeLXD) -> None:
    body = {"source": {"type": "copy", "source": "priv1"}, "config": {"limits.cpu": "2"}}
    held = await call("POST", CHECK, "operator", json=body)
    assert held.status_code == 200, held.text
    # The source's volatile keys are not copied by LXD: they do not count.
    assert fields(held) == {"source.config.security.privileged", "source.devices.host.source"}
    assert "GET /1.0/instances/priv1" in fake.calls
    admin = await call("POST", CHECK, "admin", json=body)
    assert admin.json() == {"allowed": True, "violations": []}
    plain = {"source": {"type": "copy", "source": "web1"}}
    assert (await call("POST", CHECK, "operator", json=plain)).json()["allowed"] is True
    snap = {"source": {"type": "copy", "source": "web1/snap0"}}
    assert (await call("POST", CHECK, "operator", json=snap)).json()["allowed"] is True
    assert fake.writes == []


@pytest.mark.parametrize(
    ("role", "policy"),
    [("operator", "default"), ("admin", "default"), ("operator", "unrestricted")],
)
@pytest.mark.parametrize("source", ["nope1", "web1/nosnap"])
async def test_check_copy_of_a_missing_source_is_404(
    call: Callable[..., Any], fake: FakeLXD, role: str, policy: str, source: str
) -> None:
    body = {"source": {"type": "copy", "source": source}}
    reply = await call("POST", CHECK, role, json=body, policy=policy)
    assert reply.status_code == 404, reply.text
    assert reply.json()["code"] == "not_found"
    assert fake.writes == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "web1"},  # not a field of the check
        {"config": {"a b": "1"}},
        {"devices": {"d": "not a map"}},
        {"source": {"alias": "x"}},  # no type
        {"source": {"type": "copy", "source": "x", "project": "a/b"}},
    ],
)
async def test_check_refuses_malformed_bodies(
    call: Callable[..., Any], fake: FakeLXD, body: dict[str, Any]
) -> None:
    reply = await call("POST", CHECK, "operator", json=body)
    assert reply.status_code == 422, reply.text
    assert fake.calls == []
