"""Fixtures for the analysis tests: the scenario generator (mock-data/generate.py) and snapshot builders."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from console.domain.snapshot import parse_snapshot

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = PROJECT_ROOT / "mock-data" / "generate.py"
DEPLOYED_AT = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def load_generator() -> ModuleType:
    name = "mock_data_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen() -> ModuleType:
    return load_generator()


def series(values, start_min: int = -60, deployed_at: datetime = DEPLOYED_AT) -> list[list]:
    """[[iso, value], ...] at 1-minute steps starting ``start_min`` minutes from the deploy."""
    out = []
    for i, v in enumerate(values):
        t = deployed_at + timedelta(minutes=start_min + i)
        out.append([t.isoformat().replace("+00:00", "Z"), float(v)])
    return out


def snapshot_doc(metrics: dict[str, list], logs: list[dict] | None = None, **deployment) -> dict:
    dep = {
        "id": "deploy-test",
        "service": "svc",
        "version": "v2",
        "previous_version": "v1",
        "deployed_at": DEPLOYED_AT.isoformat().replace("+00:00", "Z"),
    }
    dep.update(deployment)
    return {"deployment": dep, "metrics": metrics, "logs": logs or []}


def judge_arrays(name: str, before, after):
    """Judge one metric from two value arrays (1-minute steps, deploy between them)."""
    from console.analysis.metrics import judge_metric

    before, after = np.asarray(before, float), np.asarray(after, float)
    t0 = DEPLOYED_AT.timestamp()
    times = np.concatenate([t0 - 60.0 * np.arange(before.size, 0, -1), t0 + 60.0 * np.arange(after.size)])
    return judge_metric(name, times, np.concatenate([before, after]), t0)


def parsed(doc: dict):
    return parse_snapshot({k: v for k, v in doc.items() if k != "scenario"})
