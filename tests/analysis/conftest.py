"""Fixtures and helpers shared by the tests in tests/analysis/."""

from __future__ import annotations

import numpy as np

from console.domain.snapshot import parse_snapshot
from tests.conftest import DEPLOYED_AT


def judge_arrays(name: str, before, after):
    """Judge one metric from two value arrays (1-minute steps, deploy between them)."""
    from console.analysis.metrics import judge_metric

    before, after = np.asarray(before, float), np.asarray(after, float)
    t0 = DEPLOYED_AT.timestamp()
    times = np.concatenate([t0 - 60.0 * np.arange(before.size, 0, -1), t0 + 60.0 * np.arange(after.size)])
    return judge_metric(name, times, np.concatenate([before, after]), t0)


def parsed(doc: dict):
    return parse_snapshot({k: v for k, v in doc.items() if k != "scenario"})
