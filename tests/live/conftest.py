"""The live tests run real processes (the demo service, its load, Prometheus, the engine): skipped,
with the reason printed, where Debian's prometheus binary is missing. Each module's tests share one
fixture (its lanes run side by side), so a module is kept on one xdist worker (the suite runs with
``--dist loadgroup``); the modules themselves run on different workers at once, their waits on
windows and scrapes overlapping."""

from __future__ import annotations

import pytest

from livestack.processes import missing_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith("tests/live/"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def require_prometheus() -> None:
    reason = missing_reason("prometheus")
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
