"""NIC attach/detach against the real LXD, in both connection modes: the NIC really lands in
the instance (its devices, and the interface in its running state, read with `lxd_raw`),
concurrent attaches all land, and the refusals are clear. Networks here have no addresses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

API = "/api/v1/networks"
NO_ADDRESSES = {"ipv4.address": "none", "ipv6.address": "none"}
Headers = Callable[..., dict[str, str]]


@pytest.fixture
async def networks(lxd_raw: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Two address-less bridges made straight through LXD, deleted afterwards (instance
    fixtures requested after this one are torn down first)."""
    names = [f"tn{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        for name in names:
            reply = await lxd_raw.post("/1.0/networks", json={"name": name, "config": NO_ADDRESSES})
            assert reply.status_code == 201, reply.text
        yield names
    finally:
        for name in names:
            await lxd_raw.delete(f"/1.0/networks/{name}")


async def devices_of(raw: httpx.AsyncClient, instance: str) -> dict[str, Any]:
    reply = await raw.get(f"/1.0/instances/{instance}")
    return dict(reply.json()["metadata"]["devices"])


async def interfaces_of(raw: httpx.AsyncClient, instance: str) -> set[str]:
    reply = await raw.get(f"/1.0/instances/{instance}/state")
    return set(reply.json()["metadata"]["network"] or {})


async def test_attach_detach_nic(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    networks: list[str],
    instance: str,
) -> None:
    operator, admin = auth_headers("operator"), auth_headers("admin")
    net = networks[0]
    attached = await client.post(
        f"{API}/{net}/attach", json={"instance": instance}, headers=operator
    )
    assert attached.status_code == 200, attached.text
    want = {"type": "nic", "network": net, "name": "eth0"}
    assert attached.json() == {"instance": instance, "device": net, "config": want}
    assert (await devices_of(lxd_raw, instance))[net] == want
    assert "eth0" in await interfaces_of(lxd_raw, instance)
    used_by = (await lxd_raw.get(f"/1.0/networks/{net}")).json()["metadata"]["used_by"]
    assert f"/1.0/instances/{instance}" in used_by

    twice = await client.post(
        f"{API}/{net}/attach", json={"instance": instance, "device": "x1"}, headers=operator
    )
    assert twice.status_code == 409, twice.text
    assert twice.json()["code"] == "already_attached"

    in_use = await client.delete(f"{API}/{net}", headers=admin)
    assert in_use.status_code == 409, in_use.text
    assert in_use.json()["code"] == "in_use"
    assert instance in in_use.json()["detail"]
    rename = await client.post(f"{API}/{net}/rename", json={"name": "tnx"}, headers=admin)
    assert rename.status_code == 409, rename.text

    second = await client.post(
        f"{API}/{networks[1]}/attach",
        json={"instance": instance, "device": "lan", "interface": "eth7"},
        headers=operator,
    )
    assert second.status_code == 200, second.text
    assert (await devices_of(lxd_raw, instance))["lan"] == {
        "type": "nic",
        "network": networks[1],
        "name": "eth7",
    }
    assert "eth7" in await interfaces_of(lxd_raw, instance)

    detached = await client.post(
        f"{API}/{net}/detach", json={"instance": instance}, headers=operator
    )
    assert detached.status_code == 200, detached.text
    assert detached.json()["device"] == net
    devices = await devices_of(lxd_raw, instance)
    assert net not in devices
    assert "lan" in devices
    assert "eth0" not in await interfaces_of(lxd_raw, instance)
    again = await client.post(f"{API}/{net}/detach", json={"instance": instance}, headers=operator)
    assert again.status_code == 404, again.text

    by_name = await client.post(
        f"{API}/{networks[1]}/detach",
        json={"instance": instance, "device": "lan"},
        headers=operator,
    )
    assert by_name.status_code == 200, by_name.text
    assert "lan" not in await devices_of(lxd_raw, instance)
    deleted = await client.delete(f"{API}/{net}", headers=admin)
    assert deleted.status_code == 204, deleted.text


async def test_concurrent_nic_attaches(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    networks: list[str],
    stopped_instance: str,
) -> None:
    operator = auth_headers("operator")
    replies = await asyncio.gather(
        *(
            client.post(
                f"{API}/{net}/attach", json={"instance": stopped_instance}, headers=operator
            )
            for net in networks
        )
    )
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    devices = await devices_of(lxd_raw, stopped_instance)
    assert set(networks) <= set(devices)
    # Each got its own interface name.
    assert {devices[n]["name"] for n in networks} == {"eth0", "eth1"}


async def test_refusals(
    client: httpx.AsyncClient,
    auth_headers: Headers,
    lxd_raw: httpx.AsyncClient,
    networks: list[str],
    stopped_instance: str,
) -> None:
    operator = auth_headers("operator")
    inst = stopped_instance
    net = networks[0]
    first = await client.post(
        f"{API}/{net}/attach", json={"instance": inst, "interface": "eth3"}, headers=operator
    )
    assert first.status_code == 200, first.text
    same_iface = await client.post(
        f"{API}/{networks[1]}/attach",
        json={"instance": inst, "interface": "eth3"},
        headers=operator,
    )
    assert same_iface.status_code == 409, same_iface.text
    same_device = await client.post(
        f"{API}/{networks[1]}/attach", json={"instance": inst, "device": net}, headers=operator
    )
    assert same_device.status_code == 409, same_device.text
    wrong = await client.post(
        f"{API}/{networks[1]}/detach", json={"instance": inst, "device": net}, headers=operator
    )
    assert wrong.status_code == 404, wrong.text
    assert net in (await devices_of(lxd_raw, inst))

    unknown_net = await client.post(
        f"{API}/tn{uuid.uuid4().hex[:8]}/attach", json={"instance": inst}, headers=operator
    )
    assert unknown_net.status_code == 404, unknown_net.text
    unknown_inst = await client.post(
        f"{API}/{net}/attach", json={"instance": "nope-y2"}, headers=operator
    )
    assert unknown_inst.status_code == 404, unknown_inst.text
    host = await client.post(f"{API}/lo/attach", json={"instance": inst}, headers=operator)
    assert host.status_code == 400, host.text
    assert host.json()["code"] == "network_not_managed"
    other_project = await client.post(
        f"{API}/{net}/attach",
        params={"project": "no-such-proj"},
        json={"instance": inst},
        headers=operator,
    )
    assert other_project.status_code == 404, other_project.text
    for bad in (
        {"instance": inst, "interface": "a" * 16},
        {"instance": inst, "interface": "a/b"},
        {"instance": inst, "device": "../x"},
        {"instance": "a b"},
        {},
    ):
        reply = await client.post(f"{API}/{net}/attach", json=bad, headers=operator)
        assert reply.status_code == 422, (bad, reply.text)
    viewer = await client.post(
        f"{API}/{net}/detach", json={"instance": inst}, headers=auth_headers("viewer")
    )
    assert viewer.status_code == 403
    assert set(await devices_of(lxd_raw, inst)) == {net}
