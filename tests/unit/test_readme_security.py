"""README's "Security model" states the policy in force: every refused key and every device
type of `app.auth.policy` is in its tables, with the LXD `restricted.*` key it mirrors."""

from __future__ import annotations

import re
from pathlib import Path

from app.auth.policy import COMPRESSION_ALGORITHMS, CONFIG_RULES, DEVICE_RULES

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _rows(section: str) -> list[str]:
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_every_refused_config_key_is_in_the_table() -> None:
    rows = _rows(_section("Security model"))
    for rule in CONFIG_RULES:
        (row,) = [r for r in rows if r.startswith(f"| `{rule.key}`")]
        for mirrored in re.split(r",\s*", rule.mirrors):
            if mirrored.startswith("restricted."):
                assert f"`{mirrored}`" in row, (rule.key, mirrored)


def test_every_device_type_is_in_the_table() -> None:
    rows = _rows(_section("Security model"))
    for rule in DEVICE_RULES:
        (row,) = [r for r in rows if re.match(rf"\| [^|]*`{re.escape(rule.type)}`", r)]
        if rule.allowed:
            assert rule.allowed.split(";")[0] in row, rule.type
        else:
            assert "refused" in row, rule.type
            assert rule.mirrors in row or "restricted.devices.<type>" in row, rule.type


def test_compression_algorithms_are_listed() -> None:
    section = _section("Security model")
    for algorithm in COMPRESSION_ALGORITHMS:
        assert f"`{algorithm}`" in section
