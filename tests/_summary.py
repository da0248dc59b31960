"""A closing line that says how many integration tests really ran, per LXD connection mode."""

from __future__ import annotations

from collections import Counter

import pytest

_modes: dict[str, str] = {}
_outcomes: Counter[tuple[str, str]] = Counter()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "lxd_mode" in callspec.params:
            _modes[item.nodeid] = str(callspec.params["lxd_mode"])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    mode = _modes.get(report.nodeid)
    if mode is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[(mode, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _modes:
        return
    parts = []
    for mode in ("local", "remote"):
        counts = {outcome: n for (m, outcome), n in _outcomes.items() if m == mode}
        parts.append(
            f"{mode}: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
            f"{counts.get('skipped', 0)} skipped"
        )
    terminalreporter.write_line("real-LXD integration tests -- " + "; ".join(parts))
