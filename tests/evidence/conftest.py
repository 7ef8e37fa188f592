"""The evidence tests run the unseen service (livestack/unseen) under load with Debian's Prometheus on
loopback: skipped, with the reason printed, where the prometheus binary is missing. Their lanes run
side by side in one session fixture, so they are kept on one xdist worker."""

from __future__ import annotations

import pytest

from tests.live.conftest import require_prometheus

__all__ = ["require_prometheus"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith("tests/evidence/"):
            item.add_marker(pytest.mark.xdist_group("evidence"))
