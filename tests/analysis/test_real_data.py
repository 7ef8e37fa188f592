"""The canary judge on real noise: AWS CloudWatch series from the Numenta Anomaly Benchmark
(read from ../shared/data/nab at test time).

Each series is cut into windows (3 h baseline, 1.5 h after a pretend deploy, 5-minute steps) that
do not touch a labelled anomaly window. Scaled to a ~200 ms latency, the untouched windows must
almost never be judged a regression, and the same windows with a doubled level after the deploy
must almost always be."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from console.analysis.metrics import judge_metric

SERIES = [
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
]
BASELINE, AFTER, STRIDE = 36, 18, 100


def _epoch(text: str) -> float:
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def _windows(nab: Path, rel: str):
    with (nab / rel).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    t = np.array([_epoch(r["timestamp"]) for r in rows])
    v = np.array([float(r["value"]) for r in rows])
    labelled = [
        (_epoch(a), _epoch(b)) for a, b in json.loads((nab / "combined_windows.json").read_text())[rel]
    ]
    for start in range(0, t.size - BASELINE - AFTER, STRIDE):
        tt, vv = t[start : start + BASELINE + AFTER], v[start : start + BASELINE + AFTER]
        if any(tt[0] <= b and tt[-1] >= a for a, b in labelled):
            continue
        scale = 200.0 / max(float(np.median(vv[:BASELINE])), 1e-9)
        yield tt, vv * scale


@pytest.fixture(scope="module")
def windows(shared_data):
    nab = shared_data / "nab"
    return {rel: list(_windows(nab, rel)) for rel in SERIES}


def test_real_noise_is_rarely_a_regression(windows):
    total = flagged = 0
    for rel, ws in windows.items():
        for tt, vv in ws:
            total += 1
            flagged += judge_metric("latency_p95_ms", tt, vv, tt[BASELINE]).status == "regression"
    print(f"false regressions on real noise: {flagged}/{total}")
    assert total > 200
    assert flagged / total <= 0.02
    real_latency = windows[SERIES[0]]
    assert all(
        judge_metric("latency_p95_ms", tt, vv, tt[BASELINE]).status != "regression" for tt, vv in real_latency
    )


def test_a_doubled_level_on_real_noise_is_detected(windows):
    total = found = 0
    for ws in windows.values():
        for tt, vv in ws:
            shifted = vv.copy()
            shifted[BASELINE:] = shifted[BASELINE:] * 1.5 + 0.5 * np.median(vv[:BASELINE])
            total += 1
            found += judge_metric("latency_p95_ms", tt, shifted, tt[BASELINE]).status == "regression"
    print(f"detected doubled level on real noise: {found}/{total}")
    assert found / total >= 0.95
