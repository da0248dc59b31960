"""The lock files must say what pyproject.toml asks for: exact, hashed, every direct dependency."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def _pins(lock: str) -> dict[str, str]:
    """Name -> version for every `name==version` line of a pip lock file."""
    pins: dict[str, str] = {}
    for line in (REPO / lock).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[3]
    return pins


def _declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    runtime = [Requirement(r) for r in project["project"]["dependencies"]]
    dev = [Requirement(r) for r in project["dependency-groups"]["dev"]]
    return runtime, dev


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("requirements.txt", ("runtime",)), ("requirements-dev.txt", ("runtime", "dev"))],
)
def test_every_direct_dependency_is_pinned_within_its_range(
    lock: str, groups: tuple[str, ...]
) -> None:
    runtime, dev = _declared()
    wanted = runtime + (dev if "dev" in groups else [])
    pins = _pins(lock)
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    assert not missing, f"{lock} lacks {missing}: run `make lock`"
    outside = [
        f"{r.name}=={pins[canonicalize_name(r.name)]} (wants {r.specifier})"
        for r in wanted
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"{lock} is out of step with pyproject.toml: {outside}; run `make lock`"


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-dev.txt"])
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    text = (REPO / lock).read_text()
    entries = re.split(r"\n(?=\S)", text)
    packages = [e for e in entries if not e.startswith("#") and e.strip()]
    assert packages
    for entry in packages:
        assert _PIN.match(entry), f"not an exact pin in {lock}: {entry.splitlines()[0]}"
        assert "--hash=sha256:" in entry, f"no hash in {lock}: {entry.splitlines()[0]}"


def test_dev_lock_has_the_runtime_lock_versions() -> None:
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    differ = {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v}
    assert not differ, f"requirements-dev.txt differs from requirements.txt: {differ}"


def test_every_install_path_requires_hashes() -> None:
    for path in ("Makefile", ".ci/run", "Dockerfile"):
        installs = [
            line
            for line in (REPO / path).read_text().splitlines()
            if "pip install" in line and " -r " in line
        ]
        assert installs, path
        assert all("--require-hashes" in line or "OUTDATED" in line for line in installs), path
