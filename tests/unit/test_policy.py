"""The operator policy (`app/auth/policy.py`), pure: every refused key, device and source of
API.md's "Operator policy" list, what stays allowed, and property-based runs over random config
maps and device sets (anything with a refused key or device is refused with that field named;
the rest passes)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.policy import (
    COMPRESSION_ALGORITHMS,
    CONFIG_RULES,
    InstanceWrite,
    Policy,
    PolicyMode,
    Violation,
    check_config,
    check_device,
    check_instance,
    describe,
    names_networks,
    server_key,
)

UBUNTU = "https://cloud-images.ubuntu.com/releases"
POLICY = Policy(image_servers=(UBUNTU, "https://images.linuxcontainers.org"))
MANAGED = frozenset({"lxdbr0", "tenant1"})
HELD_ROLES = ("operator", "viewer", "none")


def fields(violations: list[Violation]) -> set[str]:
    return {v.field for v in violations}


def check(role: str = "operator", policy: Policy = POLICY, **write: Any) -> set[str]:
    write.setdefault("managed_networks", MANAGED)
    return fields(check_instance(policy, role, InstanceWrite(**write)))


# --- config ------------------------------------------------------------------------------------
REFUSED_ANY_VALUE = [
    "raw.lxc",
    "raw.idmap",
    "raw.apparmor",
    "raw.seccomp",
    "raw.qemu",
    "raw.qemu.conf",
    "security.idmap.base",
    "security.idmap.size",
    "security.syscalls.intercept.mknod",
    "security.syscalls.intercept.mount",
    "security.syscalls.intercept.mount.allowed",
    "security.syscalls.intercept.bpf.devices",
    "security.devlxd.images",
    "linux.kernel_modules",
    "limits.memory.hugepages",
    "volatile.idmap.next",
    "volatile.eth0.hwaddr",
    "volatile.base_image",
]
REFUSED_WHEN_TRUE = ["security.privileged", "security.nesting"]
TRUE_VALUES = ["true", "TRUE", "True", "1", "yes", "on", " true", "maybe"]
FALSE_VALUES = ["false", "FALSE", "0", "no", "off", ""]
ALLOWED_CONFIG = {
    "limits.cpu": "2",
    "limits.memory": "256MiB",
    "limits.processes": "100",
    "user.anything": "x",
    "user.raw.lxc": "just a user key",
    "environment.HOME": "/root",
    "boot.autostart": "true",
    "security.idmap.isolated": "true",
    "security.protection.delete": "true",
    "security.secureboot": "false",
    "cloud-init.user-data": "#cloud-config\n",
    "image.os": "busybox",
    "snapshots.schedule": "@daily",
}


@pytest.mark.parametrize("key", REFUSED_ANY_VALUE)
@pytest.mark.parametrize("value", ["x", "true", "false", "0"])
def test_refused_config_key_any_value(key: str, value: str) -> None:
    assert check(config={key: value}) == {f"config.{key}"}


@pytest.mark.parametrize("key", REFUSED_WHEN_TRUE)
@pytest.mark.parametrize("value", TRUE_VALUES)
def test_refused_when_true(key: str, value: str) -> None:
    assert check(config={key: value}) == {f"config.{key}"}


@pytest.mark.parametrize("key", REFUSED_WHEN_TRUE)
@pytest.mark.parametrize("value", FALSE_VALUES)
def test_false_is_allowed(key: str, value: str) -> None:
    assert check(config={key: value}) == set()


def test_refused_key_case_does_not_slip_through() -> None:
    assert check(config={"Security.Privileged": "true", "RAW.LXC": "x"}) == {
        "config.Security.Privileged",
        "config.RAW.LXC",
    }


def test_empty_value_unsets_and_is_allowed() -> None:
    assert check(config={"raw.lxc": "", "security.idmap.base": ""}) == set()


def test_safe_config_passes() -> None:
    assert check(config=ALLOWED_CONFIG) == set()


def test_volatile_sent_back_unchanged_is_allowed() -> None:
    current = {"volatile.eth0.hwaddr": "00:16:3e:00:00:01", "volatile.idmap.next": "[]"}
    assert check(config=dict(current), current_config=current) == set()
    changed = {**current, "volatile.idmap.next": "[{...}]"}
    assert check(config=changed, current_config=current) == {"config.volatile.idmap.next"}
    # Unchanged only frees volatile keys: a privileged key stays refused even if already there.
    current_priv = {"security.privileged": "true"}
    assert check(config=current_priv, current_config=current_priv) == {"config.security.privileged"}


def test_every_violation_at_once() -> None:
    got = check(
        config={"security.privileged": "true", "raw.lxc": "x", "limits.cpu": "1"},
        devices={
            "host": {"type": "disk", "source": "/", "path": "/host"},
            "g": {"type": "gpu"},
            "root": {"type": "disk", "pool": "default", "path": "/"},
        },
        source={"type": "image", "alias": "x", "server": "https://evil.example"},
    )
    assert got == {
        "config.security.privileged",
        "config.raw.lxc",
        "devices.host.source",
        "devices.g.type",
        "source.server",
    }


def test_reasons_are_words() -> None:
    found = check_config({rule.key.replace("*", "x"): "true" for rule in CONFIG_RULES})
    assert len(found) == len(CONFIG_RULES)
    for v in found:
        assert v.reason.startswith("refused ("), v
        assert len(v.reason) > 30, v


# --- devices -----------------------------------------------------------------------------------
REFUSED_TYPES = [
    "unix-char",
    "unix-block",
    "unix-hotplug",
    "usb",
    "gpu",
    "pci",
    "infiniband",
    "proxy",
    "tpm",
    "Disk",
    "",
    "made-up",
]


@pytest.mark.parametrize("kind", REFUSED_TYPES)
def test_refused_device_types(kind: str) -> None:
    assert check(devices={"d1": {"type": kind, "path": "/dev/x"}}) == {"devices.d1.type"}


def test_device_without_type_is_refused() -> None:
    assert check(devices={"d1": {"path": "/dev/x"}}) == {"devices.d1.type"}


@pytest.mark.parametrize(
    ("device", "field"),
    [
        ({"type": "disk", "source": "/", "path": "/host"}, "source"),
        ({"type": "disk", "source": "/var/lib/lxd/unix.socket", "path": "/s"}, "source"),
        ({"type": "disk", "source": "ceph:pool/vol", "path": "/c"}, "source"),
        ({"type": "disk", "path": "/x"}, "pool"),
        ({"type": "disk", "pool": "", "source": "/etc", "path": "/x"}, "source"),
        ({"type": "disk", "pool": "default", "source": "/etc", "path": "/x"}, "source"),
        (
            {"type": "disk", "pool": "default", "source": "v", "path": "/v", "shift": "true"},
            "shift",
        ),
        (
            {"type": "disk", "pool": "default", "path": "/", "raw.mount.options": "x"},
            "raw.mount.options",
        ),
    ],
)
def test_refused_disks(device: dict[str, str], field: str) -> None:
    assert check(devices={"d": device}) == {f"devices.d.{field}"}


@pytest.mark.parametrize(
    "device",
    [
        {"type": "disk", "pool": "default", "path": "/"},
        {"type": "disk", "pool": "default", "path": "/", "size": "1GiB"},
        {"type": "disk", "pool": "default", "source": "data", "path": "/data"},
        {"type": "disk", "pool": "default", "source": "data", "path": "/d", "readonly": "true"},
        {"type": "disk", "pool": "default", "source": "data", "path": "/d", "shift": "false"},
        {"type": "nic", "network": "lxdbr0", "name": "eth0"},
        {"type": "nic", "network": "tenant1", "name": "eth1", "hwaddr": "00:16:3e:00:00:02"},
        {"type": "nic", "nictype": "bridged", "parent": "lxdbr0", "name": "eth0"},
        {"type": "none"},
    ],
)
def test_allowed_devices(device: dict[str, str]) -> None:
    assert check(devices={"d": device}) == set()


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ({"type": "nic", "network": "eth0"}, {"network"}),
        ({"type": "nic", "nictype": "physical", "parent": "eth0"}, {"nictype", "parent"}),
        ({"type": "nic", "nictype": "macvlan", "parent": "lxdbr0"}, {"nictype"}),
        ({"type": "nic", "nictype": "ipvlan", "parent": "lxdbr0"}, {"nictype"}),
        ({"type": "nic", "nictype": "routed", "name": "eth0"}, {"nictype", "network"}),
        ({"type": "nic", "nictype": "bridged", "parent": "br-host"}, {"parent"}),
        ({"type": "nic", "nictype": "bridged"}, {"network"}),
        ({"type": "nic", "parent": "lxdbr0"}, {"nictype"}),
        ({"type": "nic", "name": "eth0"}, {"network"}),
        ({"type": "nic", "network": "lxdbr0", "nictype": "p2p"}, {"nictype"}),
    ],
)
def test_refused_nics(device: dict[str, str], expected: set[str]) -> None:
    assert check(devices={"n": device}) == {f"devices.n.{f}" for f in expected}


def test_nic_without_known_networks_is_refused() -> None:
    device = {"type": "nic", "network": "lxdbr0"}
    assert fields(check_device("devices.n", device)) == {"devices.n.network"}


def test_names_networks() -> None:
    assert names_networks({"n": {"type": "nic"}})
    assert names_networks(None, {}, {"a": {"type": "disk"}, "n": {"type": "nic"}})
    assert not names_networks({"a": {"type": "disk"}}, None)


# --- sources -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "server",
    [
        UBUNTU,
        UBUNTU + "/",
        "HTTPS://Cloud-Images.Ubuntu.com/releases",
        "https://images.linuxcontainers.org/",
    ],
)
def test_configured_servers_allowed(server: str) -> None:
    assert check(source={"type": "image", "alias": "22.04", "server": server}) == set()


@pytest.mark.parametrize(
    "server",
    [
        "https://evil.example",
        "https://cloud-images.ubuntu.com/releases/../daily",
        "https://cloud-images.ubuntu.com/releases?x=1",
        "https://user@cloud-images.ubuntu.com/releases",
        "http://cloud-images.ubuntu.com/releases",
        "https://cloud-images.ubuntu.com.evil.example/releases",
        "https://127.0.0.1:8443",
        "unix:///var/lib/lxd/unix.socket",
        "http://[::1",
        "",
    ],
)
def test_other_servers_refused(server: str) -> None:
    assert check(source={"type": "image", "alias": "x", "server": server}) == {"source.server"}


def test_local_image_and_none_and_copy_sources() -> None:
    assert check(source={"type": "image", "alias": "busybox"}) == set()
    assert check(source={"type": "image", "fingerprint": "abc"}) == set()
    assert check(source={"type": "none"}) == set()
    assert check(source={"type": "copy", "source": "web1"}, copied={}) == set()


@pytest.mark.parametrize("kind", ["migration", "conversion", None, "Copy"])
def test_refused_source_types(kind: str | None) -> None:
    assert check(source={"type": kind, "mode": "pull"}) == {"source.type"}


def test_copy_counts_the_source_instance() -> None:
    copied = {
        "config": {
            "security.privileged": "true",
            "limits.cpu": "1",
            "volatile.idmap.next": "[]",  # LXD does not copy these: not counted
            "volatile.base_image": "abc",
        },
        "devices": {
            "host": {"type": "disk", "source": "/", "path": "/host"},
            "root": {"type": "disk", "pool": "default", "path": "/"},
            "eth0": {"type": "nic", "network": "lxdbr0"},
        },
    }
    assert check(source={"type": "copy", "source": "priv"}, copied=copied) == {
        "source.config.security.privileged",
        "source.devices.host.source",
    }
    assert check("admin", source={"type": "copy", "source": "priv"}, copied=copied) == set()


def test_source_project_not_visible_holds_for_everyone() -> None:
    write = {"source": {"type": "copy", "source": "x", "project": "p2"}}
    for role in ("admin", "operator"):
        assert check(role, source_project_visible=False, **write) == {"source.project"}
        assert check(
            role, source_project_visible=False, policy=Policy(PolicyMode.unrestricted), **write
        ) == {"source.project"}


# --- who is held -------------------------------------------------------------------------------
WORST = {
    "config": {"security.privileged": "true", "raw.lxc": "x"},
    "devices": {"h": {"type": "disk", "source": "/"}, "p": {"type": "proxy"}},
    "source": {"type": "image", "alias": "x", "server": "https://evil.example"},
}


def test_admin_is_not_held() -> None:
    assert check("admin", **WORST) == set()


@pytest.mark.parametrize("role", HELD_ROLES)
def test_every_role_below_admin_is_held(role: str) -> None:
    assert len(check(role, **WORST)) == 5


def test_unrestricted_holds_nobody() -> None:
    assert check("operator", policy=Policy(PolicyMode.unrestricted), **WORST) == set()


def test_profiles_are_allowed() -> None:
    assert check(profiles=["default", "gpu-passthrough"]) == set()


def test_server_key() -> None:
    assert server_key(" HTTPS://A.example/x/ ") == "https://a.example/x"
    assert server_key("https://a.example?q=1") == "https://a.example?q=1"


def test_describe_lists_the_policy() -> None:
    body = describe(POLICY)
    assert body["mode"] == "default"
    keys = {entry["key"] for entry in body["refused_config"]}
    assert {"security.privileged", "raw.*", "volatile.*", "linux.kernel_modules"} <= keys
    allowed = {d["type"] for d in body["devices"] if d["allowed"]}
    assert allowed == {"disk", "nic", "none"}
    assert body["image_servers"] == list(POLICY.image_servers)
    assert body["compression_algorithms"] == list(COMPRESSION_ALGORITHMS)
    assert "lzop" not in COMPRESSION_ALGORITHMS
    assert describe(Policy(PolicyMode.unrestricted))["applies_to"] == "nobody"


# --- property-based ------------------------------------------------------------------------------
_SEGMENT = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
# Safe keys: namespaces with no refused key in them (user.raw.lxc is a user key, so fine).
safe_keys = st.builds(
    lambda ns, rest: f"{ns}.{rest}",
    st.sampled_from(["user", "environment", "limits", "boot", "image", "snapshots"]),
    _SEGMENT,
).filter(lambda k: k != "limits.memory.hugepages" and not k.startswith("limits.memory.hugepages"))
refused_keys = st.one_of(
    st.sampled_from(REFUSED_ANY_VALUE),
    st.builds(lambda rest: f"raw.{rest}", _SEGMENT),
    st.builds(lambda rest: f"volatile.{rest}", _SEGMENT),
    st.builds(lambda rest: f"security.syscalls.intercept.{rest}", _SEGMENT),
)
values = st.text(max_size=20).filter(lambda v: v != "")
config_maps = st.dictionaries(safe_keys, st.text(max_size=20), max_size=8)

managed_net = st.sampled_from(sorted(MANAGED))
safe_devices = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("disk"), "pool": st.just("default"), "path": st.just("/")}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("disk"),
            "pool": st.just("default"),
            "source": _SEGMENT,
            "path": st.just("/d"),
        }
    ),
    st.fixed_dictionaries({"type": st.just("nic"), "network": managed_net}),
    st.fixed_dictionaries(
        {"type": st.just("nic"), "nictype": st.just("bridged"), "parent": managed_net}
    ),
    st.just({"type": "none"}),
)
refused_devices = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(REFUSED_TYPES)}),
    st.fixed_dictionaries(
        {
            "type": st.just("disk"),
            "source": st.from_regex(r"/[a-z/]{0,12}", fullmatch=True),
            "path": st.just("/h"),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("disk"), "pool": st.just("default"), "shift": st.just("true")}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("nic"),
            "nictype": st.sampled_from(["physical", "macvlan", "sriov"]),
            "parent": st.just("eth0"),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("nic"), "network": st.sampled_from(["eth0", "host0", "docker0"])}
    ),
)
device_names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
device_maps = st.dictionaries(device_names, safe_devices, max_size=5)


@settings(max_examples=300, deadline=None)
@given(config=config_maps, devices=device_maps)
def test_property_safe_bodies_pass(config: dict[str, str], devices: dict[str, Any]) -> None:
    assert check(config=config, devices=devices) == set()


@settings(max_examples=300, deadline=None)
@given(
    config=config_maps,
    bad=st.dictionaries(refused_keys, values, min_size=1, max_size=4),
    devices=device_maps,
    bad_devices=st.dictionaries(device_names.map(lambda n: f"x{n}"), refused_devices, max_size=3),
)
def test_property_refused_keys_are_named(
    config: dict[str, str],
    bad: dict[str, str],
    devices: dict[str, Any],
    bad_devices: dict[str, Any],
) -> None:
    got = check(config={**config, **bad}, devices={**devices, **bad_devices})
    # Exactly the refused keys and devices are named, each under its own field.
    assert {f for f in got if f.startswith("config.")} == {f"config.{k}" for k in bad}
    named = {f.split(".")[1] for f in got if f.startswith("devices.")}
    assert named == set(bad_devices)
    assert check("admin", config={**config, **bad}, devices={**devices, **bad_devices}) == set()


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(REFUSED_WHEN_TRUE), value=st.text(max_size=8))
def test_property_true_means_anything_but_false(key: str, value: str) -> None:
    refused = value.strip().lower() not in {"", "0", "false", "no", "off"}
    assert (check(config={key: value}) == {f"config.{key}"}) is (refused and value != "")
