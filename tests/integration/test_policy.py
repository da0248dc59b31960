"""The operator policy against the real LXD, in both connection modes: every refused config key
and device is a 403 `policy_violation` naming it on `POST /instances`, and LXD (read with
`lxd_raw`) never sees the instance; PUT/PATCH leave a refused instance as it was; refused
sources (an unknown image server, a migration, a copy of a privileged instance) create nothing;
what the policy allows (pool disks, managed NICs, the attach routes) works for an operator, and
an admin is not held. `POST /policy/check` answers what `POST /instances` does.

Networks made here have no addresses (`ipv4.address=none`, `ipv6.address=none`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.support.lxd_sandbox import LXDEnv

API = "/api/v1/instances"
CHECK = "/api/v1/policy/check"
POOL = "default"  # the sandbox's storage pool
NO_ADDRESSES = {"ipv4.address": "none", "ipv6.address": "none"}
Headers = Callable[..., dict[str, str]]

REFUSED_CONFIG = [
    ("security.privileged", "true"),
    ("security.nesting", "true"),
    ("raw.lxc", "lxc.apparmor.profile=unconfined"),
    ("raw.idmap", "both 1000 1000"),
    ("security.idmap.base", "100000"),
    ("security.idmap.size", "65536"),
    ("security.syscalls.intercept.mknod", "true"),
    ("security.devlxd.images", "true"),
    ("linux.kernel_modules", "overlay"),
    ("limits.memory.hugepages", "true"),
    ("volatile.x", "1"),
]
# (case id, device, the violation's field under `devices.d`)
REFUSED_DEVICES = [
    ("disk-host-root", {"type": "disk", "source": "/", "path": "/host"}, "source"),
    (
        "disk-shift",
        {"type": "disk", "pool": POOL, "source": "v1", "path": "/v", "shift": "true"},
        "shift",
    ),
    (
        "disk-raw-mount",
        {"type": "disk", "pool": POOL, "source": "v1", "path": "/v", "raw.mount.options": "rw"},
        "raw.mount.options",
    ),
    ("nic-macvlan", {"type": "nic", "nictype": "macvlan", "parent": "eth0"}, "nictype"),
    ("nic-unmanaged-parent", {"type": "nic", "nictype": "bridged", "parent": "eth0"}, "parent"),
    ("nic-unmanaged-network", {"type": "nic", "network": "eth0"}, "network"),
    ("unix-char", {"type": "unix-char", "path": "/dev/kvm"}, "type"),
    ("unix-block", {"type": "unix-block", "path": "/dev/sda"}, "type"),
    ("unix-hotplug", {"type": "unix-hotplug", "vendorid": "1d6b"}, "type"),
    ("usb", {"type": "usb", "vendorid": "1d6b"}, "type"),
    ("gpu", {"type": "gpu"}, "type"),
    ("pci", {"type": "pci", "address": "0000:00:02.0"}, "type"),
    ("infiniband", {"type": "infiniband", "nictype": "physical", "parent": "ib0"}, "type"),
    (
        "proxy",
        {
            "type": "proxy",
            "listen": "tcp:127.0.0.1:18999",
            "connect": "unix:/var/lib/lxd/unix.socket",
        },
        "type",
    ),
]


def name() -> str:
    return f"pol{uuid.uuid4().hex[:8]}"


def refused_fields(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 403, reply.text
    body = reply.json()
    assert body["code"] == "policy_violation", body
    assert body["request_id"]
    assert all(v["reason"] for v in body["violations"])
    return [v["field"] for v in body["violations"]]


async def exists(raw: httpx.AsyncClient, instance: str) -> bool:
    reply = await raw.get(f"/1.0/instances/{instance}")
    assert reply.status_code in {200, 404}, reply.text
    return reply.status_code == 200


async def lxd_instance(raw: httpx.AsyncClient, instance: str) -> dict[str, Any]:
    reply = await raw.get(f"/1.0/instances/{instance}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["metadata"])


@pytest.fixture
async def bridge(lxd_raw: httpx.AsyncClient) -> AsyncIterator[str]:
    """A managed bridge without addresses, deleted afterwards (request it before `names`)."""
    net = f"tp{uuid.uuid4().hex[:8]}"
    reply = await lxd_raw.post("/1.0/networks", json={"name": net, "config": NO_ADDRESSES})
    assert reply.status_code == 201, reply.text
    try:
        yield net
    finally:
        await lxd_raw.delete(f"/1.0/networks/{net}")


@pytest.fixture
async def volumes(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Two custom volumes in the sandbox pool, deleted afterwards (request it before `names`)."""
    made: list[str] = []
    try:
        for _ in range(2):
            volume = f"pv{uuid.uuid4().hex[:8]}"
            reply = await lxd_raw.post(
                f"/1.0/storage-pools/{POOL}/volumes/custom", json={"name": volume}
            )
            assert reply.status_code == 200, reply.text
            made.append(volume)
        yield made
    finally:
        for volume in made:
            await lxd_raw.delete(f"/1.0/storage-pools/{POOL}/volumes/custom/{volume}")


def create_body(instance: str, lxd_env: LXDEnv, **extra: Any) -> dict[str, Any]:
    body = {"name": instance, "source": {"type": "image", "alias": lxd_env.image_alias}}
    return {**body, "start": False, **extra}


# --- every refused key and device on POST /instances -------------------------------------------
@pytest.mark.parametrize(("key", "value"), REFUSED_CONFIG, ids=[k for k, _ in REFUSED_CONFIG])
async def test_refused_config_key(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    names: list[str],
    key: str,
    value: str,
) -> None:
    instance = name()
    names.append(instance)  # removed should the policy ever let it through
    body = create_body(instance, lxd_env, config={"limits.cpu": "1", key: value})
    reply = await client.post(API, json=body, headers=auth_headers("operator"))
    assert refused_fields(reply) == [f"config.{key}"]
    assert not await exists(lxd_raw, instance)


@pytest.mark.parametrize(
    ("device", "field"),
    [(device, field) for _, device, field in REFUSED_DEVICES],
    ids=[case for case, _, _ in REFUSED_DEVICES],
)
async def test_refused_device(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    names: list[str],
    device: dict[str, str],
    field: str,
) -> None:
    instance = name()
    names.append(instance)
    body = create_body(instance, lxd_env, devices={"d": device})
    reply = await client.post(API, json=body, headers=auth_headers("operator"))
    assert f"devices.d.{field}" in refused_fields(reply)
    assert not await exists(lxd_raw, instance)


async def test_every_violation_at_once_and_check_agrees(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    names: list[str],
) -> None:
    instance = name()
    names.append(instance)
    config = {"limits.cpu": "1", "user.note": "fine", **dict(REFUSED_CONFIG)}
    devices = {case: device for case, device, _ in REFUSED_DEVICES}
    body = create_body(instance, lxd_env, config=config, devices=devices)
    operator = auth_headers("operator")
    reply = await client.post(API, json=body, headers=operator)
    got = refused_fields(reply)
    want = {f"config.{key}" for key, _ in REFUSED_CONFIG}
    want |= {f"devices.{case}.{field}" for case, _, field in REFUSED_DEVICES}
    assert want <= set(got)
    assert not {f for f in got if f.startswith(("config.limits.cpu", "config.user."))}
    assert not await exists(lxd_raw, instance)

    check = {"config": config, "devices": devices, "source": body["source"]}
    for role in ("operator", "viewer"):
        answer = await client.post(CHECK, json=check, headers=auth_headers(role))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"allowed": False, "violations": reply.json()["violations"]}
    admin = await client.post(CHECK, json=check, headers=auth_headers("admin"))
    assert admin.status_code == 200, admin.text
    assert admin.json() == {"allowed": True, "violations": []}


# --- PUT and PATCH -----------------------------------------------------------------------------
async def test_put_and_patch_of_a_refused_key_change_nothing(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    stopped_instance: str,
) -> None:
    operator = auth_headers("operator")
    url = f"{API}/{stopped_instance}"
    before = await lxd_instance(lxd_raw, stopped_instance)

    patch = await client.patch(
        url, json={"config": {"security.privileged": "true"}}, headers=operator
    )
    assert refused_fields(patch) == ["config.security.privileged"]

    # The whole config as LXD has it (its volatile keys unchanged are no change) plus raw.lxc.
    config = {**before["config"], "raw.lxc": "lxc.apparmor.profile=unconfined"}
    put_body = {
        "config": config,
        "devices": {**before["devices"], "host": {"type": "disk", "source": "/", "path": "/h"}},
        "profiles": before["profiles"],
    }
    put = await client.put(url, params={"wait": "true"}, json=put_body, headers=operator)
    assert refused_fields(put) == ["config.raw.lxc", "devices.host.source"]

    after = await lxd_instance(lxd_raw, stopped_instance)
    assert after["config"] == before["config"]
    assert after["devices"] == before["devices"]

    allowed = await client.patch(url, json={"config": {"user.note": "ok"}}, headers=operator)
    assert allowed.status_code == 200, allowed.text
    assert (await lxd_instance(lxd_raw, stopped_instance))["config"]["user.note"] == "ok"


# --- sources -----------------------------------------------------------------------------------
async def test_unknown_image_server_is_refused_and_nothing_fetched(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    names: list[str],
) -> None:
    instance = name()
    names.append(instance)
    images_before = (await lxd_raw.get("/1.0/images")).json()["metadata"]
    source = {"type": "image", "alias": "busybox", "server": "https://example.invalid"}
    reply = await client.post(
        API, json={"name": instance, "source": source}, headers=auth_headers("operator")
    )
    assert refused_fields(reply) == ["source.server"]
    assert not await exists(lxd_raw, instance)
    assert (await lxd_raw.get("/1.0/images")).json()["metadata"] == images_before
    operations = (await lxd_raw.get("/1.0/operations", params={"recursion": "1"})).json()
    running = [op for ops in (operations["metadata"] or {}).values() for op in ops]
    assert not [op for op in running if instance in str(op.get("resources"))]


async def test_migration_source_is_refused(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    names: list[str],
) -> None:
    instance = name()
    names.append(instance)
    source = {"type": "migration", "mode": "pull", "operation": "https://example.invalid/1.0/x"}
    reply = await client.post(
        API, json={"name": instance, "source": source}, headers=auth_headers("operator")
    )
    # The create body knows only image, none and copy (422, for every role) before the policy
    # (403) is asked; the check reports the policy's own refusal.
    assert reply.status_code in {403, 422}, reply.text
    if reply.status_code == 403:
        assert "source.type" in refused_fields(reply)
    assert not await exists(lxd_raw, instance)
    check = await client.post(CHECK, json={"source": source}, headers=auth_headers("operator"))
    assert check.status_code == 200, check.text
    assert [v["field"] for v in check.json()["violations"]] == ["source.type"]


async def test_copy_of_a_privileged_instance(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    names: list[str],
) -> None:
    """The admin is not held (a privileged, nesting create works); an operator's copy of that
    instance is refused on the copied config, the admin's copy works."""
    operator, admin = auth_headers("operator"), auth_headers("admin")
    source_name, refused_copy, admin_copy = name(), name(), name()
    names.extend([source_name, refused_copy, admin_copy])
    privileged = {"security.privileged": "true", "security.nesting": "true"}
    body = {"name": source_name, "source": {"type": "none"}, "config": privileged}

    check = await client.post(CHECK, json={"config": privileged}, headers=admin)
    assert check.json() == {"allowed": True, "violations": []}
    made = await client.post(API, params={"wait": "true"}, json=body, headers=admin)
    assert made.status_code == 200, made.text
    assert made.json()["status"] == "Success", made.json()
    made_config = (await lxd_instance(lxd_raw, source_name))["config"]
    assert made_config["security.privileged"] == "true"
    assert made_config["security.nesting"] == "true"

    copy = {"type": "copy", "source": source_name}
    refused = await client.post(API, json={"name": refused_copy, "source": copy}, headers=operator)
    fields = set(refused_fields(refused))
    assert fields == {"source.config.security.privileged", "source.config.security.nesting"}
    assert not await exists(lxd_raw, refused_copy)
    check = await client.post(CHECK, json={"source": copy}, headers=operator)
    assert check.json() == {"allowed": False, "violations": refused.json()["violations"]}

    check = await client.post(CHECK, json={"source": copy}, headers=admin)
    assert check.json() == {"allowed": True, "violations": []}
    copied = await client.post(
        API,
        params={"wait": "true"},
        json={"name": admin_copy, "source": copy},
        headers=admin,
    )
    assert copied.status_code == 200, copied.text
    assert copied.json()["status"] == "Success", copied.json()
    assert (await lxd_instance(lxd_raw, admin_copy))["config"]["security.privileged"] == "true"


async def test_restoring_a_privileged_snapshot_is_refused(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    names: list[str],
) -> None:
    """An admin made the instance privileged, snapshotted it and took the privilege back: an
    operator's restore would bring it back, so it is refused (and the instance stays as it
    was); the admin's restore works."""
    operator, admin = auth_headers("operator"), auth_headers("admin")
    instance = name()
    names.append(instance)
    body = {"name": instance, "source": {"type": "none"}, "config": {"security.privileged": "true"}}
    made = await client.post(API, params={"wait": "true"}, json=body, headers=admin)
    assert made.json()["status"] == "Success", made.text
    snap = await client.post(
        f"{API}/{instance}/snapshots", params={"wait": "true"}, json={"name": "s0"}, headers=admin
    )
    assert snap.status_code == 200, snap.text
    unset = await client.patch(
        f"{API}/{instance}", json={"config": {"security.privileged": ""}}, headers=admin
    )
    assert unset.status_code == 200, unset.text
    restore = f"{API}/{instance}/snapshots/s0/restore"
    refused = await client.post(restore, params={"wait": "true"}, headers=operator)
    assert refused_fields(refused) == ["snapshot.config.security.privileged"]
    config = (await lxd_instance(lxd_raw, instance))["config"]
    assert config.get("security.privileged", "") in ("", "false")
    missing = await client.post(f"{API}/{instance}/snapshots/nope/restore", headers=operator)
    assert missing.status_code == 404
    done = await client.post(restore, params={"wait": "true"}, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "Success", done.json()
    assert (await lxd_instance(lxd_raw, instance))["config"]["security.privileged"] == "true"


@pytest.mark.parametrize("role", ["operator", "admin"])
async def test_copy_of_a_missing_source_is_404_on_both(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    names: list[str],
    role: str,
) -> None:
    instance = name()
    names.append(instance)
    copy = {"type": "copy", "source": f"gone{uuid.uuid4().hex[:8]}"}
    headers = auth_headers(role)
    created = await client.post(API, json={"name": instance, "source": copy}, headers=headers)
    assert created.status_code == 404, created.text
    check = await client.post(CHECK, json={"source": copy}, headers=headers)
    assert check.status_code == 404, check.text
    assert check.json()["code"] == "not_found"
    assert not await exists(lxd_raw, instance)


# --- what stays allowed ------------------------------------------------------------------------
async def test_operator_creates_a_safe_instance(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    lxd_env: LXDEnv,
    bridge: str,
    volumes: list[str],
    names: list[str],
) -> None:
    instance = name()
    names.append(instance)
    config = {"limits.cpu": "1", "user.owner": "team-a", "user.note": "policy test"}
    devices = {
        "root": {"type": "disk", "pool": POOL, "path": "/"},
        "data": {"type": "disk", "pool": POOL, "source": volumes[0], "path": "/srv/data"},
        "eth0": {"type": "nic", "network": bridge, "name": "eth0"},
        "eth1": {"type": "nic", "nictype": "bridged", "parent": bridge, "name": "eth1"},
    }
    operator = auth_headers("operator")
    check = await client.post(CHECK, json={"config": config, "devices": devices}, headers=operator)
    assert check.json() == {"allowed": True, "violations": []}
    body = create_body(instance, lxd_env, config=config, devices=devices)
    reply = await client.post(
        API, params={"wait": "true", "timeout": 120}, json=body, headers=operator
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Success", reply.json()
    made = await lxd_instance(lxd_raw, instance)
    assert {k: made["config"][k] for k in config} == config
    assert made["devices"] == devices


async def test_attach_routes_stay_allowed(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    bridge: str,
    volumes: list[str],
    stopped_instance: str,
) -> None:
    operator = auth_headers("operator")
    nic = await client.post(
        f"/api/v1/networks/{bridge}/attach", json={"instance": stopped_instance}, headers=operator
    )
    assert nic.status_code == 200, nic.text
    disk = await client.post(
        f"/api/v1/storage/pools/{POOL}/volumes/{volumes[1]}/attach",
        json={"instance": stopped_instance, "path": "/mnt/v"},
        headers=operator,
    )
    assert disk.status_code == 200, disk.text
    devices = (await lxd_instance(lxd_raw, stopped_instance))["devices"]
    assert devices[bridge] == {"type": "nic", "network": bridge, "name": "eth0"}
    assert devices[volumes[1]] == {
        "type": "disk",
        "pool": POOL,
        "source": volumes[1],
        "path": "/mnt/v",
    }
    # `stopped_instance` goes first (requested last), then the volumes and the bridge.


# --- GET /policy -------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "held"), [("viewer", True), ("admin", False)])
async def test_get_policy(
    client: httpx.AsyncClient, auth_headers: Headers, role: str, held: bool
) -> None:
    reply = await client.get("/api/v1/policy", headers=auth_headers(role))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["mode"] == "default"
    assert body["held"] is held
    assert {rule["key"] for rule in body["refused_config"]} == {
        "security.privileged",
        "security.nesting",
        "raw.*",
        "security.idmap.base",
        "security.idmap.size",
        "security.syscalls.intercept.*",
        "security.devlxd.images",
        "linux.kernel_modules",
        "limits.memory.hugepages",
        "volatile.*",
    }
    refused_types = {rule["type"] for rule in body["devices"] if not rule["allowed"]}
    assert {"unix-char", "unix-block", "unix-hotplug", "usb", "gpu", "pci"} <= refused_types
    assert {"infiniband", "proxy"} <= refused_types
    assert (await client.get("/api/v1/policy")).status_code == 401
