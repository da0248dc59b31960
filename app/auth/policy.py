"""The operator policy: what a caller below `admin` may put into an instance (API.md, Part 2,
"Operator policy").

LXD's own warning: whoever may set any instance config or device is root on the host
(privileged containers, host-path disks, `raw.lxc`, passthrough devices). `admin` is trusted with
the host; everyone below it is held to this policy, which mirrors the defaults of an LXD project
with `restricted=true` (the `mirrors` column of each rule names the `restricted.*` key).

Pure functions, no I/O (the one import from `app` is the schemas' list of compression
algorithms): the caller gathers what a request names (the copy source instance, the project's
managed networks, the configured image servers) and passes it in; `check_instance()` answers
every violation at once, `[]` when the write is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from app.schemas.backups import COMPRESSION_ALGORITHMS

TRUSTED_ROLE = "admin"


class PolicyMode(StrEnum):
    default = "default"
    unrestricted = "unrestricted"  # the policy is off: every operator is root on the host


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ConfigRule:
    """A refused config key (`raw.*`: every key with that prefix)."""

    key: str
    only_true: bool  # refused only with a true value (LXD's own booleans); else any value
    why: str
    mirrors: str

    def matches(self, key: str) -> bool:
        if self.key.endswith(".*"):
            return key.startswith(self.key[:-1])
        return key == self.key


_LOWLEVEL = "restricted.containers.lowlevel"
CONFIG_RULES: tuple[ConfigRule, ...] = (
    ConfigRule(
        "security.privileged",
        True,
        "a privileged container's root is root on the LXD host",
        "restricted.containers.privilege",
    ),
    ConfigRule(
        "security.nesting",
        True,
        "nesting opens the host's /proc and /sys further to the container",
        "restricted.containers.nesting",
    ),
    ConfigRule(
        "raw.*",
        False,
        "raw LXC, QEMU, AppArmor, seccomp and idmap settings bypass every LXD safeguard",
        f"{_LOWLEVEL}, restricted.virtual-machines.lowlevel",
    ),
    ConfigRule(
        "security.idmap.base",
        False,
        "chooses which host UIDs the container maps to (another tenant's, or root's)",
        _LOWLEVEL,
    ),
    ConfigRule(
        "security.idmap.size",
        False,
        "chooses how many host UIDs the container maps to",
        _LOWLEVEL,
    ),
    ConfigRule(
        "security.syscalls.intercept.*",
        False,
        "the host performs intercepted system calls (mount, mknod, bpf) for the container",
        "restricted.containers.interception",
    ),
    ConfigRule(
        "security.devlxd.images",
        False,
        "lets the container read the host's image store through /dev/lxd",
        _LOWLEVEL,
    ),
    ConfigRule(
        "linux.kernel_modules",
        False,
        "loads kernel modules into the host's kernel when the instance starts",
        _LOWLEVEL,
    ),
    ConfigRule(
        "limits.memory.hugepages",
        False,
        "takes the host's huge pages",
        "restricted.virtual-machines.lowlevel",
    ),
    ConfigRule(
        "volatile.*",
        False,
        "LXD's own state of the instance (idmaps, MAC addresses): set by LXD, not by clients",
        "the volatile checks of restricted projects",
    ),
)


@dataclass(frozen=True, slots=True)
class DeviceRule:
    type: str
    allowed: str  # "" when the type is refused outright
    why: str
    mirrors: str


ALLOWED_DEVICE_TYPES = ("disk", "nic", "none")
DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(
        "disk",
        "from a storage pool only (`pool`: the root disk or a custom volume); no host `source` "
        "path, no `shift`, no `raw.mount.options`",
        "a host path disk (`source=/`) hands the host's files to the instance",
        "restricted.devices.disk=managed",
    ),
    DeviceRule(
        "nic",
        "on a managed network of the project only (`network`, or `nictype: bridged` with a "
        "managed `parent`)",
        "other NIC types (physical, macvlan, ipvlan, routed...) hand out or tap host interfaces",
        "restricted.devices.nic=managed",
    ),
    DeviceRule("none", "always (it hides a profile's device)", "", ""),
    DeviceRule("unix-char", "", "a host character device node", "restricted.devices.unix-char"),
    DeviceRule(
        "unix-block", "", "a host block device (its disks)", "restricted.devices.unix-block"
    ),
    DeviceRule(
        "unix-hotplug", "", "host device nodes as they appear", "restricted.devices.unix-hotplug"
    ),
    DeviceRule("usb", "", "a host USB device", "restricted.devices.usb"),
    DeviceRule("gpu", "", "a host GPU", "restricted.devices.gpu"),
    DeviceRule("pci", "", "a host PCI device (passthrough)", "restricted.devices.pci"),
    DeviceRule("infiniband", "", "a host InfiniBand device", "restricted.devices.infiniband"),
    DeviceRule(
        "proxy",
        "",
        "connects host sockets and ports (LXD's own socket included) to the instance",
        "restricted.devices.proxy",
    ),
)
_DEVICE_WHY = {rule.type: rule for rule in DEVICE_RULES}

SOURCE_TYPES = ("image", "none", "copy")
REFUSED_SOURCE_TYPES = ("migration",)

# LXD's `shared.IsFalseOrEmpty`: everything else is (or would be refused as) a true value.
_FALSE = frozenset({"", "0", "false", "no", "off"})


def is_false(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in _FALSE


def server_key(url: str) -> str:
    """A server URL as compared with the configured ones: scheme and host lower-cased, no
    trailing slash (`HTTPS://Images.example/` is `https://images.example`)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    rest = f"?{parts.query}" if parts.query else ""
    rest += f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}{rest}"


@dataclass(frozen=True, slots=True)
class Policy:
    """The policy in force: its mode and the image servers non-admins may create from."""

    mode: PolicyMode = PolicyMode.default
    image_servers: tuple[str, ...] = ()
    _server_keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_server_keys", frozenset(map(server_key, self.image_servers)))

    def holds(self, role: str) -> bool:
        """Whether a caller with this global role is held to the policy."""
        return self.mode is PolicyMode.default and role != TRUSTED_ROLE

    def server_allowed(self, url: str) -> bool:
        return server_key(url) in self._server_keys


@dataclass(frozen=True, slots=True)
class InstanceWrite:
    """What one write sets, and the LXD objects it names (gathered by the caller)."""

    config: Mapping[str, str] = field(default_factory=dict)
    devices: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: Mapping[str, Any] | None = None
    # Profiles are admin-owned: naming one is allowed. Kept for the record of what was checked.
    profiles: Iterable[str] = ()
    # `source.type: copy`: the source instance (or snapshot) as LXD has it (its config, devices).
    copied: Mapping[str, Any] | None = None
    # The instance being changed: a `volatile.*` key sent back unchanged is not a change.
    current_config: Mapping[str, str] = field(default_factory=dict)
    managed_networks: frozenset[str] = frozenset()
    # Whether the caller may view `source.project` (per-project roles decide; see the caller).
    source_project_visible: bool = True


def check_instance(policy: Policy, role: str, write: InstanceWrite) -> list[Violation]:
    """Every violation of the write for a caller of this global role; `[]`: allowed."""
    found: list[Violation] = []
    if not write.source_project_visible:
        # An access rule, not a host-safety one: it holds in every mode and for every role.
        found.append(Violation("source.project", "you have no role in the copy's source project"))
    if not policy.holds(role):
        return found
    found += check_config(write.config, current=write.current_config)
    found += check_devices(write.devices, managed_networks=write.managed_networks)
    if write.source is not None:
        found += check_source(policy, write.source)
    if write.copied is not None:
        found += _check_copied(write.copied, managed_networks=write.managed_networks)
    return found


def check_config(
    config: Mapping[str, Any], *, current: Mapping[str, str] | None = None, prefix: str = "config"
) -> list[Violation]:
    found: list[Violation] = []
    current = current or {}
    for key, value in config.items():
        if value == "":
            continue  # an empty value unsets the key in LXD
        name = str(key).lower()
        for rule in CONFIG_RULES:
            if not rule.matches(name):
                continue
            if rule.only_true and is_false(value):
                break
            if rule.key == "volatile.*" and current.get(key) == value:
                break  # sent back as LXD has it (a GET, changed, PUT back)
            refused = "a true value" if rule.only_true else "any value"
            found.append(Violation(f"{prefix}.{key}", f"refused ({refused}): {rule.why}"))
            break
    return found


def check_devices(
    devices: Mapping[str, Any],
    *,
    managed_networks: frozenset[str] = frozenset(),
    prefix: str = "devices",
) -> list[Violation]:
    found: list[Violation] = []
    for name, device in devices.items():
        found += check_device(
            f"{prefix}.{name}",
            device if isinstance(device, Mapping) else {},
            managed_networks=managed_networks,
        )
    return found


def check_device(
    field_name: str, device: Mapping[str, Any], *, managed_networks: frozenset[str] = frozenset()
) -> list[Violation]:
    kind = device.get("type")
    if kind == "disk":
        return _check_disk(field_name, device)
    if kind == "nic":
        return _check_nic(field_name, device, managed_networks)
    if kind == "none":
        return []
    rule = _DEVICE_WHY.get(str(kind))
    why = f": {rule.why}" if rule else ""
    allowed = ", ".join(ALLOWED_DEVICE_TYPES)
    return [
        Violation(
            f"{field_name}.type", f"device type {kind!r} is refused{why} ({allowed} are allowed)"
        )
    ]


def _check_disk(field_name: str, device: Mapping[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    source = device.get("source")
    if not device.get("pool"):
        where = "source" if source else "pool"
        found.append(
            Violation(
                f"{field_name}.{where}",
                "a disk must come from a storage pool (`pool`): without one, `source` is a path "
                "on the LXD host",
            )
        )
    elif isinstance(source, str) and source.startswith("/"):
        found.append(
            Violation(f"{field_name}.source", "with `pool`, `source` names a volume, not a path")
        )
    if "shift" in device and not is_false(device["shift"]):
        found.append(
            Violation(f"{field_name}.shift", "shifting maps host-owned files into the instance")
        )
    if device.get("raw.mount.options"):
        found.append(
            Violation(f"{field_name}.raw.mount.options", "raw mount options reach the host's mount")
        )
    return found


def _check_nic(
    field_name: str, device: Mapping[str, Any], managed: frozenset[str]
) -> list[Violation]:
    found: list[Violation] = []
    network, nictype, parent = device.get("network"), device.get("nictype"), device.get("parent")
    if nictype is not None and nictype != "bridged":
        found.append(
            Violation(
                f"{field_name}.nictype",
                f"nictype {nictype!r} is refused: only `bridged` on a managed network",
            )
        )
    if network is not None and network not in managed:
        found.append(
            Violation(
                f"{field_name}.network", f"{network!r} is not a managed network of the project"
            )
        )
    if parent is not None and parent not in managed:
        found.append(
            Violation(f"{field_name}.parent", f"{parent!r} is not a managed network of the project")
        )
    if network is None and parent is None:
        found.append(
            Violation(
                f"{field_name}.network",
                "a NIC must name a managed network (`network`, or `nictype: bridged` + `parent`)",
            )
        )
    elif network is None and nictype is None:
        found.append(
            Violation(f"{field_name}.nictype", "a NIC on `parent` needs `nictype: bridged`")
        )
    return found


def check_source(policy: Policy, source: Mapping[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    kind = source.get("type")
    if kind not in SOURCE_TYPES:
        found.append(
            Violation(
                "source.type",
                f"source type {kind!r} is refused (allowed: {', '.join(SOURCE_TYPES)}): a "
                "migration makes LXD connect wherever the client says",
            )
        )
    server = source.get("server")
    if server is not None and not (isinstance(server, str) and policy.server_allowed(server)):
        found.append(
            Violation(
                "source.server",
                "only the configured image servers are allowed (GET /policy lists them): LXD "
                "would fetch from anywhere its host can reach",
            )
        )
    return found


def _check_copied(
    copied: Mapping[str, Any], *, managed_networks: frozenset[str]
) -> list[Violation]:
    # LXD copies the source's config (without its volatile keys) and devices into the new
    # instance: they count as if the request had set them.
    config = {
        k: v for k, v in (copied.get("config") or {}).items() if not str(k).startswith("volatile.")
    }
    found = check_config(config, prefix="source.config")
    found += check_devices(
        copied.get("devices") or {}, managed_networks=managed_networks, prefix="source.devices"
    )
    return found


def names_networks(*device_maps: Mapping[str, Any] | None) -> bool:
    """Whether any device is a NIC (then the caller must gather the managed networks)."""
    return any(
        isinstance(dev, Mapping) and dev.get("type") == "nic"
        for devices in device_maps
        if devices
        for dev in devices.values()
    )


def describe(policy: Policy) -> dict[str, Any]:
    """The policy in force, as `GET /policy` answers it."""
    return {
        "mode": str(policy.mode),
        "applies_to": "every role below admin" if policy.mode is PolicyMode.default else "nobody",
        "refused_config": [
            {
                "key": rule.key,
                "refused": "true values" if rule.only_true else "any value",
                "why": rule.why,
                "mirrors": rule.mirrors,
            }
            for rule in CONFIG_RULES
        ],
        "devices": [
            {
                "type": rule.type,
                "allowed": bool(rule.allowed),
                "rule": rule.allowed or "refused",
                "why": rule.why,
                "mirrors": rule.mirrors,
            }
            for rule in DEVICE_RULES
        ],
        "other_device_types": "refused",
        "source_types": list(SOURCE_TYPES),
        "refused_source_types": list(REFUSED_SOURCE_TYPES),
        "image_servers": list(policy.image_servers),
        "compression_algorithms": list(COMPRESSION_ALGORITHMS),
    }
