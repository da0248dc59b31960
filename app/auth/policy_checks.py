"""The operator policy applied to requests: gather what a write names from LXD (the copy
source, the project's managed networks, the instance being changed), run the pure checks of
`app.auth.policy`, and raise `PolicyViolation` (403, every violation at once) before anything is
written to LXD. Only reads reach LXD here, and only for callers the policy holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.auth import access
from app.auth.policy import (
    InstanceWrite,
    Policy,
    PolicyMode,
    Violation,
    check_device,
    check_instance,
    names_networks,
)
from app.core.config import Settings
from app.db.models import User
from app.errors import PolicyViolation
from app.lxd import LXDClient, lxd_path
from app.services.devices import DeviceGuard
from app.services.images import image_remotes
from app.services.instances import copy_source


def policy_from_settings(settings: Settings) -> Policy:
    """The policy in force: `OPERATOR_POLICY`, and the image servers of `remote: ubuntu|images`
    plus `IMAGE_SERVERS_ALLOWED`."""
    servers = [server.url for server in image_remotes(settings).values()]
    servers += [u.strip() for u in settings.IMAGE_SERVERS_ALLOWED.split(",") if u.strip()]
    return Policy(mode=PolicyMode(settings.OPERATOR_POLICY), image_servers=tuple(servers))


def may_view_project(user: User, project: str) -> bool:
    """Whether `user` has at least viewer in `project` (a copy's `source.project`)."""
    return access.sees(user, project)


def raise_if_refused(violations: list[Violation]) -> None:
    if violations:
        raise PolicyViolation([v.as_dict() for v in violations])


async def managed_networks(lxd: LXDClient, *, project: str) -> frozenset[str]:
    reply = await lxd.get(lxd_path("networks"), project=project, params={"recursion": "1"})
    return frozenset(
        str(net.get("name"))
        for net in reply.metadata or []
        if isinstance(net, dict) and net.get("managed") is True
    )


async def instance_violations(
    lxd: LXDClient,
    *,
    policy: Policy,
    user: User,
    project: str,
    body: Mapping[str, Any],
    instance: str | None = None,
) -> list[Violation]:
    """Every violation of an instance write (`body`: what LXD would get: create, PUT or PATCH;
    `instance`: the instance being changed, for PUT and PATCH)."""
    held = policy.holds(user.role)
    config = dict(body.get("config") or {})
    devices = dict(body.get("devices") or {})
    source = body.get("source") if isinstance(body.get("source"), Mapping) else None
    visible = True
    if source is not None and source.get("project") not in (None, "", project):
        visible = may_view_project(user, str(source["project"]))
    copied = None
    if held and visible and source is not None and source.get("type") == "copy":
        copied = await copy_source(lxd, source, project=project)
    managed: frozenset[str] = frozenset()
    if held and names_networks(devices, (copied or {}).get("devices")):
        managed = await managed_networks(lxd, project=project)
    current: dict[str, str] = {}
    if held and instance is not None and any(str(k).startswith("volatile.") for k in config):
        reply = await lxd.get(lxd_path("instances", instance), project=project)
        current = dict((reply.metadata or {}).get("config") or {})
    write = InstanceWrite(
        config=config,
        devices=devices,
        source=source,
        profiles=tuple(body.get("profiles") or ()),
        copied=copied,
        current_config=current,
        managed_networks=managed,
        source_project_visible=visible,
    )
    return check_instance(policy, user.role, write)


async def enforce_instance_write(
    lxd: LXDClient,
    *,
    settings: Settings,
    user: User,
    project: str,
    body: Mapping[str, Any],
    instance: str | None = None,
) -> None:
    """403 `policy_violation` unless the policy allows this create, PUT or PATCH."""
    violations = await instance_violations(
        lxd,
        policy=policy_from_settings(settings),
        user=user,
        project=project,
        body=body,
        instance=instance,
    )
    raise_if_refused(violations)


async def enforce_snapshot_restore(
    lxd: LXDClient,
    *,
    settings: Settings,
    user: User,
    project: str,
    instance: str,
    snapshot: str,
) -> None:
    """403 `policy_violation` when restoring would bring back what the policy refuses: a
    restore resets the instance's config and devices to the snapshot's (taken, perhaps, while
    an admin had made the instance privileged). The snapshot's `volatile.*` keys are LXD's own
    and come back anyway."""
    policy = policy_from_settings(settings)
    if not policy.holds(user.role):
        return
    reply = await lxd.get(lxd_path("instances", instance, "snapshots", snapshot), project=project)
    taken = dict(reply.metadata or {})
    config = {
        key: value
        for key, value in dict(taken.get("config") or {}).items()
        if not str(key).startswith("volatile.")
    }
    devices = dict(taken.get("devices") or {})
    managed = await managed_networks(lxd, project=project) if names_networks(devices) else None
    write = InstanceWrite(config=config, devices=devices, managed_networks=managed or frozenset())
    found = check_instance(policy, user.role, write)
    raise_if_refused(
        [Violation(f"snapshot.{v.field}", v.reason) for v in found]  # what the restore sets
    )


async def device_guard(
    lxd: LXDClient, *, settings: Settings, user: User, project: str, nic: bool = False
) -> DeviceGuard | None:
    """For the attach routes, which build the device themselves: a check the device edit runs
    on the device it is about to add (None when the caller is not held). `nic`: gather the
    project's managed networks for it."""
    policy = policy_from_settings(settings)
    if not policy.holds(user.role):
        return None
    managed = await managed_networks(lxd, project=project) if nic else frozenset()

    def guard(name: str, device: dict[str, str]) -> None:
        raise_if_refused(check_device(f"devices.{name}", device, managed_networks=managed))

    return guard
