"""The read model's rules without LXD (`app.services.readmodel`): an event marks an
instance at once and a later read waits for its re-read; the newest re-read wins; this API's
writes re-read or reload; project and profile events; size bounds; a stream that is down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.errors import LXDNotFound, LXDUnavailable
from app.lxd import LXDResponse
from app.services.readmodel import ReadModel


class FakeLXDClient:
    """The LXD client as the read model uses it: `get()` of one instance from `self.instances`,
    optionally held at a gate."""

    def __init__(self) -> None:
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}
        self.gates: list[asyncio.Event] = []
        self.reads: list[str] = []
        self.fail = False

    async def get(self, path: str, project: str | None = None, **_: Any) -> LXDResponse:
        name = path.rsplit("/", 1)[-1]
        self.reads.append(name)
        seen = dict(self.instances.get((project or "default", name)) or {})  # read now
        if self.gates:
            await self.gates.pop(0).wait()
        if self.fail:
            raise LXDUnavailable("LXD is unreachable")
        if not seen:
            raise LXDNotFound("not found")
        return LXDResponse("sync", 200, seen, etag=f"etag-{seen.get('config')}")


def instance(name: str, **config: str) -> dict[str, Any]:
    return {"name": name, "status": "Stopped", "type": "container", "config": config}


def event(action: str, name: str, project: str = "default", **context: str) -> dict[str, Any]:
    return {
        "type": "lifecycle",
        "project": project,
        "metadata": {
            "action": action,
            "source": f"/1.0/instances/{name}",
            "context": context or None,
        },
    }


@pytest.fixture
def lxd() -> FakeLXDClient:
    fake = FakeLXDClient()
    fake.instances[("default", "web1")] = instance("web1", mark="0")
    fake.instances[("default", "web2")] = instance("web2")
    return fake


@pytest.fixture
def model(lxd: FakeLXDClient) -> ReadModel:
    read_model = ReadModel(lxd)  # type: ignore[arg-type]
    read_model.connected = True  # as if the event stream were up
    read_model.epoch = 1
    return read_model


def lister(lxd: FakeLXDClient, project: str = "default") -> Any:
    calls: list[int] = []

    async def fetch() -> list[Any]:
        calls.append(1)
        return [dict(i) for (p, _), i in lxd.instances.items() if p == project]

    fetch.calls = calls  # type: ignore[attr-defined]
    return fetch


async def names(model: ReadModel, fetch: Any, project: str = "default") -> list[str]:
    snapshot = await model.instances(project, fetch)
    assert snapshot is not None
    return [item["name"] for item in snapshot.items]


async def test_a_read_after_an_event_waits_for_its_reread(
    model: ReadModel, lxd: FakeLXDClient
) -> None:
    fetch = lister(lxd)
    assert await names(model, fetch) == ["web1", "web2"]
    lxd.instances[("default", "web1")] = instance("web1", mark="1")
    gate = asyncio.Event()
    lxd.gates.append(gate)
    model._on_event(event("instance-updated", "web1"))
    read = asyncio.ensure_future(model.instances("default", fetch))
    await asyncio.sleep(0.01)
    assert not read.done()  # held until the re-read is back
    gate.set()
    snapshot = await read
    assert snapshot is not None
    assert snapshot.items[0]["config"] == {"mark": "1"}
    assert len(fetch.calls) == 1  # one list, then one re-read


async def test_the_newest_reread_wins(model: ReadModel, lxd: FakeLXDClient) -> None:
    fetch = lister(lxd)
    await names(model, fetch)
    slow = asyncio.Event()
    lxd.gates.append(slow)  # the first re-read reads mark=1 and is held
    lxd.instances[("default", "web1")] = instance("web1", mark="1")
    model._on_event(event("instance-updated", "web1"))
    await asyncio.sleep(0)
    lxd.instances[("default", "web1")] = instance("web1", mark="2")
    model._on_event(event("instance-updated", "web1"))  # read at once: mark=2
    await asyncio.sleep(0.01)
    slow.set()  # the older, staler answer comes last
    snapshot = await model.instances("default", fetch)
    assert snapshot is not None
    assert snapshot.items[0]["config"] == {"mark": "2"}


async def test_rename_delete_and_create_events(model: ReadModel, lxd: FakeLXDClient) -> None:
    fetch = lister(lxd)
    await names(model, fetch)
    lxd.instances[("default", "web3")] = lxd.instances.pop(("default", "web1")) | {"name": "web3"}
    model._on_event(event("instance-renamed", "web3", old_name="web1"))
    assert await names(model, fetch) == ["web2", "web3"]
    del lxd.instances[("default", "web2")]
    model._on_event(event("instance-deleted", "web2"))
    assert await names(model, fetch) == ["web3"]
    lxd.instances[("default", "new1")] = instance("new1")
    model._on_event(event("instance-created", "new1"))
    before = lxd.reads.count("web3")
    model._on_event(event("instance-exec", "web3"))  # changes nothing: no re-read
    assert await names(model, fetch) == ["new1", "web3"]
    assert lxd.reads.count("web3") == before
    assert len(fetch.calls) == 1


async def test_own_writes_reread_or_reload(model: ReadModel, lxd: FakeLXDClient) -> None:
    fetch = lister(lxd)
    await names(model, fetch)
    lxd.instances[("default", "web1")] = instance("web1", mark="9")
    model.note_write("default", "web1")  # no event needed
    got = await model.instance("default", "web1", fetch)
    assert got is not None
    assert got[0]["config"] == {"mark": "9"}
    assert got[1] == "etag-{'mark': '9'}"
    lxd.instances[("default", "made")] = instance("made")
    model.note_write("default", None)  # a create: the project is listed again
    assert await names(model, fetch) == ["made", "web1", "web2"]
    assert len(fetch.calls) == 2


async def test_single_gets_ask_lxd_for_a_name_the_model_lacks(
    model: ReadModel, lxd: FakeLXDClient
) -> None:
    fetch = lister(lxd)
    await names(model, fetch)
    lxd.instances[("default", "quick")] = instance("quick")  # its event is not here yet
    got = await model.instance("default", "quick", fetch)
    assert got is not None
    assert got[0]["name"] == "quick"
    with pytest.raises(LXDNotFound):
        await model.instance("default", "never", fetch)


async def test_project_and_profile_events(model: ReadModel, lxd: FakeLXDClient) -> None:
    fetch = lister(lxd)
    await names(model, fetch)
    model._on_event(
        {
            "project": "default",
            "metadata": {"action": "profile-updated", "source": "/1.0/profiles/x"},
        }
    )
    await names(model, fetch)
    assert len(fetch.calls) == 2  # expanded config may have changed: reloaded
    model._on_event(
        {
            "project": "default",
            "metadata": {"action": "project-updated", "source": "/1.0/projects/default"},
        }
    )
    assert model.state()["projects"] == {}


async def test_a_failed_reread_reloads_and_a_broken_stream_answers_none(
    model: ReadModel, lxd: FakeLXDClient
) -> None:
    fetch = lister(lxd)
    await names(model, fetch)
    lxd.fail = True
    model._on_event(event("instance-updated", "web1"))
    await asyncio.sleep(0.01)  # the re-read failed: the model cannot tell, it reloads
    lxd.fail = False
    await names(model, fetch)
    assert len(fetch.calls) == 2
    model.connected = False
    assert await model.instances("default", fetch) is None
    assert await model.instance("default", "web1", fetch) is None


async def test_bounds_and_unknown_projects(lxd: FakeLXDClient) -> None:
    model = ReadModel(lxd, max_projects=2, max_instances=1)  # type: ignore[arg-type]
    model.connected = True
    assert await model.instances("default", lister(lxd)) is None  # 2 instances: too many
    fetch = lister(lxd, "default")
    assert await model.instances("default", fetch) is None  # and not tried again soon
    assert fetch.calls == []
    for project in ("a", "b", "c"):
        lxd.instances[(project, "x")] = instance("x")
        assert await names(model, lister(lxd, project), project) == ["x"]
    assert list(model.state()["projects"]) == ["b", "c"]  # the least recently read went

    async def unknown() -> list[Any]:
        raise LXDNotFound("Project 'zz' not found")

    with pytest.raises(LXDNotFound):
        await model.instances("zz", unknown)
    assert "zz" not in model.state()["projects"]
