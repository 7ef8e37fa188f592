"""The evidence tests run the unseen service (livestack/unseen) under load with Debian's Prometheus on
loopback: skipped, with the reason printed, where the prometheus binary is missing. Their lanes run
side by side in one session fixture of the module, so its tests stay on one xdist worker
(tests/conftest.py)."""

from __future__ import annotations

from tests.live.conftest import require_prometheus

__all__ = ["require_prometheus"]
