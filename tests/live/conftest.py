"""The live tests run real processes (the demo service, its load, Prometheus, the engine): skipped,
with the reason printed, where Debian's prometheus binary is missing. Each module's tests share one
fixture (its lanes run side by side), so a module stays on one xdist worker (tests/conftest.py);
the modules run on different workers at once, their waits on windows and scrapes overlapping."""

from __future__ import annotations

import pytest

from livestack.processes import missing_reason


def require_prometheus() -> None:
    reason = missing_reason("prometheus")
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
