"""Networks: CRUD, rename, state, leases, and NIC attach/detach on instances.

LXD's network list also shows the host's own interfaces (`managed: false`); LXD answers most
calls on those with a puzzling 404 "Network not found". Those are told apart here and answered
400 `network_not_managed`. LXD 5.0 quirks handled: a duplicate create is a 400 (409 here), and
deleting or renaming a network in use is a 400 (409 here, naming the users).
"""

from __future__ import annotations

from typing import Any, NoReturn

from app.errors import BadRequestError, ConflictError, LXDError, LXDNotFound, reword_not_found
from app.lxd import LXDClient, lxd_path
from app.services.devices import (
    DeviceEdit,
    DeviceGuard,
    InstanceDevices,
    describe_users,
    edit_devices,
    free_name,
    pick_device,
)
from app.services.listing import list_collection
from app.services.storage import is_in_use, raise_as_conflict_if_duplicate
from app.utils.pagination import ListQuery

MAX_ETH = 1000


def _path(network: str, *rest: str) -> str:
    return lxd_path("networks", network, *rest)


async def list_networks(
    lxd: LXDClient,
    *,
    project: str,
    query: ListQuery,
) -> dict[str, Any]:
    return await list_collection(
        lxd,
        lxd_path("networks"),
        project=project,
        query=query,
    )


async def get_network(
    lxd: LXDClient, *, project: str, network: str
) -> tuple[dict[str, Any], str | None]:
    with reword_not_found("Network", network, or_project=project):
        reply = await lxd.get(_path(network), project=project)
    return dict(reply.metadata or {}), reply.etag


async def _not_found_or_unmanaged(
    lxd: LXDClient, *, project: str, network: str, cause: LXDNotFound
) -> NoReturn:
    """LXD said 404 on a managed-only call: say whether the network is missing or unmanaged."""
    meta, _ = await get_network(lxd, project=project, network=network)
    if meta.get("managed") is False:
        raise BadRequestError(
            f"Network {network!r} is a host interface not managed by LXD: "
            "only managed networks can be changed or have leases",
            code="network_not_managed",
        ) from cause
    raise cause


async def _managed_call(lxd: LXDClient, *, project: str, network: str, call: Any) -> Any:
    try:
        return await call()
    except LXDNotFound as exc:
        await _not_found_or_unmanaged(lxd, project=project, network=network, cause=exc)


async def create_network(lxd: LXDClient, *, project: str, body: dict[str, Any]) -> dict[str, Any]:
    payload = {k: v for k, v in body.items() if v is not None}
    try:
        reply = await lxd.post(lxd_path("networks"), project=project, json_body=payload)
        await reply.wait()
    except LXDError as exc:
        raise_as_conflict_if_duplicate(exc)
    meta, _ = await get_network(lxd, project=project, network=body["name"])
    return meta


async def update_network(
    lxd: LXDClient,
    *,
    project: str,
    network: str,
    body: dict[str, Any],
    replace: bool,
    if_match: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """PUT (`replace`) or PATCH; `if_match` is passed to LXD as `If-Match`."""
    headers = {"If-Match": if_match} if if_match else None
    payload = body if replace else {k: v for k, v in body.items() if v is not None}
    send = lxd.put if replace else lxd.patch

    async def call() -> None:
        reply = await send(_path(network), project=project, json_body=payload, headers=headers)
        await reply.wait()

    await _managed_call(lxd, project=project, network=network, call=call)
    return await get_network(lxd, project=project, network=network)


async def rename_network(
    lxd: LXDClient, *, project: str, network: str, new_name: str
) -> dict[str, Any]:
    async def call() -> None:
        reply = await lxd.post(_path(network), project=project, json_body={"name": new_name})
        await reply.wait()

    try:
        await _managed_call(lxd, project=project, network=network, call=call)
    except LXDError as exc:
        if is_in_use(exc):
            await _raise_in_use(lxd, project=project, network=network, cause=exc)
        raise_as_conflict_if_duplicate(exc)
    meta, _ = await get_network(lxd, project=project, network=new_name)
    return meta


async def delete_network(lxd: LXDClient, *, project: str, network: str) -> None:
    async def call() -> None:
        reply = await lxd.delete(_path(network), project=project)
        await reply.wait()

    try:
        await _managed_call(lxd, project=project, network=network, call=call)
    except LXDError as exc:
        if not is_in_use(exc):
            raise
        await _raise_in_use(lxd, project=project, network=network, cause=exc)


async def _raise_in_use(lxd: LXDClient, *, project: str, network: str, cause: LXDError) -> NoReturn:
    meta, _ = await get_network(lxd, project=project, network=network)
    users = describe_users(meta.get("used_by"))
    raise ConflictError(f"Network {network!r} is in use by {users}", code="in_use") from cause


async def network_state(lxd: LXDClient, *, project: str, network: str) -> dict[str, Any]:
    with reword_not_found("Network", network, or_project=project):
        reply = await lxd.get(_path(network, "state"), project=project)
    return dict(reply.metadata or {})


async def network_leases(lxd: LXDClient, *, project: str, network: str) -> list[dict[str, Any]]:
    async def call() -> Any:
        return await lxd.get(_path(network, "leases"), project=project)

    reply = await _managed_call(lxd, project=project, network=network, call=call)
    return list(reply.metadata or [])


# --- NIC attach / detach ------------------------------------------------------------------------
def _uses_network(device: dict[str, str], network: str) -> bool:
    return device.get("type") == "nic" and device.get("network") == network


def _interfaces(current: InstanceDevices) -> set[str]:
    """Interface names in use: set on a NIC, or chosen by LXD (volatile.<dev>.name)."""
    names = set()
    for dev_name, dev in current.expanded.items():
        if dev.get("type") != "nic":
            continue
        chosen = dev.get("name") or current.config.get(f"volatile.{dev_name}.name")
        if chosen:
            names.add(chosen)
    return names


async def attach_nic(
    lxd: LXDClient,
    *,
    project: str,
    network: str,
    instance: str,
    device: str | None,
    interface: str | None,
    guard: DeviceGuard | None = None,
) -> tuple[str, dict[str, str]]:
    """Add a NIC on the network to the instance; return (device name, device). `guard` sees
    the device before anything is written."""
    meta, _ = await get_network(lxd, project=project, network=network)
    if meta.get("managed") is False:
        raise BadRequestError(
            f"Network {network!r} is a host interface not managed by LXD: attach to a managed one",
            code="network_not_managed",
        )

    def plan(current: InstanceDevices) -> DeviceEdit:
        for name, dev in current.expanded.items():
            if _uses_network(dev, network):
                raise ConflictError(
                    f"Instance {instance!r} is already on network {network!r} (device {name!r})",
                    code="already_attached",
                )
        if device is not None and device in current.taken_names():
            raise ConflictError(f"Instance {instance!r} already has a device named {device!r}")
        used = _interfaces(current)
        if interface is not None and interface in used:
            raise ConflictError(f"Instance {instance!r} already has an interface {interface!r}")
        iface = interface or next(f"eth{n}" for n in range(MAX_ETH) if f"eth{n}" not in used)
        name = device or free_name(network, current.taken_names(), fallback="nic")
        nic = {"type": "nic", "network": network, "name": iface}
        if guard is not None:
            guard(name, nic)
        return DeviceEdit(add={name: nic})

    edit = await edit_devices(lxd, project=project, instance=instance, plan=plan)
    ((name, config),) = edit.add.items()
    return name, config


async def detach_nic(
    lxd: LXDClient, *, project: str, network: str, instance: str, device: str | None
) -> tuple[str, dict[str, str]]:
    """Remove the instance's NIC on the network; return (device name, device)."""
    removed: dict[str, dict[str, str]] = {}

    def plan(current: InstanceDevices) -> DeviceEdit:
        name = pick_device(
            current,
            device=device,
            matches=lambda dev: _uses_network(dev, network),
            what=f"Network {network!r}",
        )
        removed.clear()
        removed[name] = current.local[name]
        return DeviceEdit(remove=frozenset({name}))

    await edit_devices(lxd, project=project, instance=instance, plan=plan)
    ((name, config),) = removed.items()
    return name, config
