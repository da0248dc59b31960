"""Device editing against a fake LXD: the faults a real daemon cannot be made to produce on
demand (a 412 on every write, a lost update, a busy instance), the retry bound, and the small
helpers (device names, who uses an object, which device to detach)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.errors import BadRequestError, ConflictError, LXDBadRequest, NotFoundError
from app.lxd import LXDClient
from app.services import devices
from app.services.devices import DeviceEdit, InstanceDevices, edit_devices
from tests.support.lxd_replies import error, started, sync

ROOT = {"type": "disk", "path": "/", "pool": "default"}
DISK = {"type": "disk", "pool": "p", "source": "v1", "path": "/mnt"}


@dataclass
class FakeInstance:
    """One instance as LXD keeps it, with scripted faults for the next writes."""

    devices: dict[str, dict[str, str]] = field(default_factory=lambda: {"eth9": {"type": "nic"}})
    version: int = 1
    faults: list[str] = field(default_factory=list)  # "412", "busy", "lost", "400"
    puts: list[dict[str, Any]] = field(default_factory=list)
    if_match: list[str | None] = field(default_factory=list)
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {
            "name": "web1",
            "architecture": "x86_64",
            "config": {"volatile.eth9.name": "eth0"},
            "devices": copy.deepcopy(self.devices),
            "expanded_devices": {"root": ROOT, **copy.deepcopy(self.devices)},
            "ephemeral": False,
            "profiles": ["default"],
            "stateful": False,
            "description": "",
            "status": "Running",
            "state": None,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/1.0/instances/web1":
            return sync(self.meta(), etag=f'"v{self.version}"')
        if request.method == "PUT" and path == "/1.0/instances/web1":
            return self._put(request)
        if request.method == "GET" and path.startswith("/1.0/operations/"):
            op_id = path.split("/")[3]
            return sync(self.ops[op_id])
        return error(404, "not found")

    def _put(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.puts.append(body)
        self.if_match.append(request.headers.get("if-match"))
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "412" or request.headers.get("if-match") != f'"v{self.version}"':
            return error(412, "ETag doesn't match")
        if fault == "400":
            return error(400, "Invalid devices: bad")
        op_id = f"op{len(self.puts)}"
        if fault == "busy":
            err = "Failed to create instance update operation: A matching non-reusable operation"
            self.ops[op_id] = {"id": op_id, "status": "Failure", "status_code": 400, "err": err}
        else:
            if fault != "lost":
                self.devices = body["devices"]
            self.version += 1
            self.ops[op_id] = {"id": op_id, "status": "Success", "status_code": 200, "err": ""}
        return started(self.ops[op_id])


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "BACKOFF_BASE", 0.0)


@pytest.fixture
async def fake(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[FakeInstance, Any]]:
    instance = FakeInstance()
    lxd = LXDClient(make_settings(), transport=httpx.MockTransport(instance.handler))
    try:
        yield instance, lxd
    finally:
        await lxd.close()


def add_disk(current: InstanceDevices) -> DeviceEdit:
    return DeviceEdit(add={"data": dict(DISK)})


async def test_write_is_a_put_with_if_match_of_the_whole_instance(fake: Any) -> None:
    instance, lxd = fake
    edit = await edit_devices(lxd, project="default", instance="web1", plan=add_disk)
    assert edit.add == {"data": DISK}
    assert instance.devices == {"eth9": {"type": "nic"}, "data": DISK}
    (body,) = instance.puts
    assert set(body) == set(devices.PUT_FIELDS)
    assert body["config"] == {"volatile.eth9.name": "eth0"}  # kept as read
    assert "root" not in body["devices"]  # a profile's device is not copied into the instance
    assert instance.if_match == ['"v1"']


@pytest.mark.parametrize("fault", ["412", "busy", "lost"])
async def test_retried_from_a_fresh_read(fake: Any, fault: str) -> None:
    instance, lxd = fake
    instance.faults = [fault, fault]
    seen: list[set[str]] = []

    def plan(current: InstanceDevices) -> DeviceEdit:
        seen.append(set(current.local))
        return add_disk(current)

    await edit_devices(lxd, project="default", instance="web1", plan=plan)
    assert len(instance.puts) == 3
    assert len(seen) == 3  # the plan ran on each fresh read
    assert instance.devices["data"] == DISK


async def test_gives_up_after_the_bound(fake: Any) -> None:
    instance, lxd = fake
    instance.faults = ["412"] * 50
    with pytest.raises(ConflictError) as caught:
        await edit_devices(lxd, project="default", instance="web1", plan=add_disk)
    assert caught.value.code == "concurrent_update"
    assert len(instance.puts) == devices.MAX_ATTEMPTS
    assert "data" not in instance.devices


async def test_other_errors_are_not_retried(fake: Any) -> None:
    instance, lxd = fake
    instance.faults = ["400"]
    with pytest.raises(LXDBadRequest):
        await edit_devices(lxd, project="default", instance="web1", plan=add_disk)
    assert len(instance.puts) == 1


async def test_a_plan_refusal_writes_nothing(fake: Any) -> None:
    instance, lxd = fake

    def refuse(current: InstanceDevices) -> DeviceEdit:
        raise ConflictError("no")

    with pytest.raises(ConflictError):
        await edit_devices(lxd, project="default", instance="web1", plan=refuse)
    assert instance.puts == []


async def test_remove(fake: Any) -> None:
    instance, lxd = fake
    remove = DeviceEdit(remove=frozenset({"eth9"}))
    await edit_devices(lxd, project="default", instance="web1", plan=lambda _: remove)
    assert instance.devices == {}


def test_free_name() -> None:
    assert devices.free_name("data", {"root"}, fallback="disk") == "data"
    assert devices.free_name("data", {"data", "data-2"}, fallback="disk") == "data-3"
    assert devices.free_name("bad/name", set(), fallback="disk") == "disk"
    assert devices.free_name("x" * 80, {"disk"}, fallback="disk") == "disk-2"


def test_describe_users() -> None:
    used_by = [
        "/1.0/instances/web1",
        "/1.0/instances/db%201?project=prod",
        "/1.0/profiles/default",
        "/1.0/storage-pools/p/volumes/custom/v1",
    ]
    assert devices.describe_users(used_by) == (
        "instance web1, instance db 1 (project prod), profile default, volume p/v1"
    )
    assert devices.describe_users([]) == "another object"
    assert devices.describe_users([f"/1.0/instances/i{n}" for n in range(12)]).endswith(
        "and 2 more"
    )


def _current(local: dict[str, dict[str, str]], profile: dict[str, dict[str, str]]) -> Any:
    return InstanceDevices(name="web1", local=local, expanded={**profile, **local}, config={})


def _is_v1(dev: dict[str, str]) -> bool:
    return dev.get("source") == "v1"


def test_pick_device() -> None:
    pick = devices.pick_device
    current = _current({"a": DISK, "other": ROOT}, {})
    assert pick(current, device=None, matches=_is_v1, what="v1") == "a"
    assert pick(current, device="a", matches=_is_v1, what="v1") == "a"
    with pytest.raises(NotFoundError):
        pick(current, device="other", matches=_is_v1, what="v1")
    with pytest.raises(NotFoundError):
        pick(_current({}, {}), device=None, matches=_is_v1, what="v1")
    with pytest.raises(ConflictError):
        pick(_current({"a": DISK, "b": DISK}, {}), device=None, matches=_is_v1, what="v1")
    from_profile = _current({}, {"p": DISK})
    with pytest.raises(BadRequestError):
        pick(from_profile, device=None, matches=_is_v1, what="v1")
    with pytest.raises(BadRequestError):
        pick(from_profile, device="p", matches=_is_v1, what="v1")
