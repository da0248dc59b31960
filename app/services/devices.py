"""Safe editing of an instance's devices, shared by volume and NIC attach/detach.

One edit = read the instance with its ETag, let a *plan* decide what to add or remove, write the
whole instance back with PUT + `If-Match` (PATCH cannot remove a device on LXD 5.0), wait for
LXD's operation, then read back that the change landed. A 412 (someone changed the instance in
between), LXD's own "another update is running" failure, or a change that did not survive is
retried a bounded number of times from a fresh read, so two concurrent edits never drop each
other's device. Within this process, edits of one instance are also serialized by a lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from app.errors import (
    BadRequestError,
    ConflictError,
    LXDError,
    NotFoundError,
    reword_not_found,
)
from app.lxd import LXDClient, WriteLost, edit_with_etag, is_conflict, lxd_path, one_edit_at_a_time
from app.schemas.storage import DEVICE_NAME_PATTERN

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05  # seconds; grows per attempt, with jitter
WRITE_TIMEOUT = 60.0
# The writable part of an instance (what PUT takes); everything else LXD sends is read-only.
PUT_FIELDS = (
    "architecture",
    "config",
    "devices",
    "ephemeral",
    "profiles",
    "stateful",
    "description",
)
# LXD 5.0 lets only one update operation run per instance: a second one fails with these.
_BUSY = re.compile(
    r"non-reusable operation|instance update operation|is busy|operation.*already running", re.I
)
DeviceMap = dict[str, dict[str, str]]
_DEVICE_NAME = re.compile(DEVICE_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class InstanceDevices:
    """What a plan sees: the instance's own devices, and those its profiles add."""

    name: str
    local: DeviceMap
    expanded: DeviceMap
    config: dict[str, str]

    def taken_names(self) -> set[str]:
        return set(self.local) | set(self.expanded)


@dataclass(frozen=True, slots=True)
class DeviceEdit:
    add: DeviceMap = field(default_factory=dict)
    remove: frozenset[str] = frozenset()


Plan = Callable[[InstanceDevices], DeviceEdit]
# Runs on a device an attach is about to add (name, device) and raises to refuse it: the
# operator policy (`app.auth.policy_checks.device_guard`).
DeviceGuard = Callable[[str, dict[str, str]], None]


def free_name(base: str, taken: Iterable[str], *, fallback: str) -> str:
    """`base`, else `base-2`, `base-3`...: the first name not in `taken`."""
    base = base if _DEVICE_NAME.match(base) and len(base) <= 56 else fallback
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


async def read_instance(
    lxd: LXDClient, *, project: str, instance: str
) -> tuple[dict[str, Any], str | None]:
    with reword_not_found("Instance", instance, in_project=project):
        reply = await lxd.get(lxd_path("instances", instance), project=project)
    return dict(reply.metadata or {}), reply.etag


def _devices_of(meta: dict[str, Any], instance: str) -> InstanceDevices:
    return InstanceDevices(
        name=instance,
        local={k: dict(v) for k, v in (meta.get("devices") or {}).items()},
        expanded={k: dict(v) for k, v in (meta.get("expanded_devices") or {}).items()},
        config=dict(meta.get("config") or {}),
    )


def _landed(local: DeviceMap, edit: DeviceEdit) -> bool:
    for name, wanted in edit.add.items():
        have = local.get(name)
        if have is None or any(have.get(k) != v for k, v in wanted.items()):
            return False
    return not any(name in local for name in edit.remove)


async def _write(
    lxd: LXDClient, *, project: str, instance: str, body: dict[str, Any], etag: str | None
) -> None:
    headers = {"If-Match": etag} if etag else None
    reply = await lxd.put(
        lxd_path("instances", instance), project=project, json_body=body, headers=headers
    )
    await reply.wait(WRITE_TIMEOUT, what=f"Updating instance {instance!r}")


def _retryable(exc: LXDError) -> bool:
    return is_conflict(exc) or bool(_BUSY.search(exc.detail))


async def edit_devices(lxd: LXDClient, *, project: str, instance: str, plan: Plan) -> DeviceEdit:
    """Apply what `plan` decides (it runs on every fresh read, and raises to refuse); return
    the edit that landed. 409 when the instance kept changing under us."""

    async def attempt() -> DeviceEdit:
        meta, etag = await read_instance(lxd, project=project, instance=instance)
        current = _devices_of(meta, instance)
        edit = plan(current)
        devices = {k: v for k, v in current.local.items() if k not in edit.remove}
        devices.update(edit.add)
        body = {k: meta[k] for k in PUT_FIELDS if k in meta}
        body["devices"] = devices
        await _write(lxd, project=project, instance=instance, body=body, etag=etag)
        after, _ = await read_instance(lxd, project=project, instance=instance)
        if not _landed(_devices_of(after, instance).local, edit):
            raise WriteLost(f"The device edit of {instance!r} was replaced by another writer")
        return edit

    def retrying(attempt: int, exc: LXDError) -> None:
        reason = "lost" if isinstance(exc, WriteLost) else exc.code
        log.info("devices.retry", instance=instance, attempt=attempt, reason=reason)

    async with one_edit_at_a_time("instance", lxd.base_url, project, instance):
        return await edit_with_etag(
            attempt,
            attempts=MAX_ATTEMPTS,
            retry_if=_retryable,
            backoff=BACKOFF_BASE,
            on_retry=retrying,
            gave_up=lambda _: ConflictError(
                f"Instance {instance!r} kept changing while its devices were being edited; "
                "try again",
                code="concurrent_update",
            ),
        )


def pick_device(
    current: InstanceDevices,
    *,
    device: str | None,
    matches: Callable[[dict[str, str]], bool],
    what: str,
) -> str:
    """The instance's own device that `matches` (named, or the only one): 404 when there is
    none, 400 when it comes from a profile, 409 when several would do."""
    instance = current.name
    if device is not None:
        dev = current.local.get(device)
        if dev is not None and matches(dev):
            return device
        if device in current.expanded and matches(current.expanded[device]):
            raise BadRequestError(
                f"Device {device!r} of {instance!r} comes from a profile: edit the profile",
                code="profile_device",
            )
        raise NotFoundError(f"{what} is not attached to {instance!r} as device {device!r}")
    found = sorted(name for name, dev in current.local.items() if matches(dev))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ConflictError(
            f"{what} is attached to {instance!r} as devices {', '.join(found)}: "
            "name the one to detach with `device`"
        )
    if any(matches(dev) for dev in current.expanded.values()):
        raise BadRequestError(
            f"{what} is attached to {instance!r} through a profile: edit the profile",
            code="profile_device",
        )
    raise NotFoundError(f"{what} is not attached to {instance!r}")


# --- who uses an object -------------------------------------------------------------------------
_KINDS = {
    "instances": "instance",
    "profiles": "profile",
    "networks": "network",
    "images": "image",
    "projects": "project",
    "network-acls": "network ACL",
    "network-zones": "network zone",
}


def describe_user(url: str) -> str:
    """`/1.0/instances/web1?project=p` -> `instance web1 (project p)`."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s][1:]  # drop "1.0"
    project = parse_qs(parts.query).get("project", [""])[0]
    suffix = f" (project {project})" if project and project != "default" else ""
    if len(segments) >= 5 and segments[0] == "storage-pools" and segments[2] == "volumes":
        return f"volume {segments[1]}/{'/'.join(segments[4:])}{suffix}"
    if len(segments) >= 2:
        kind = _KINDS.get(segments[0], segments[0])
        return f"{kind} {'/'.join(segments[1:])}{suffix}"
    return url


def describe_users(used_by: Iterable[str] | None, *, limit: int = 10) -> str:
    names = [describe_user(str(u)) for u in (used_by or [])]
    if not names:
        return "another object"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
