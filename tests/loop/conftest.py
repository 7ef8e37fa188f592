"""Helpers of the loop tests: second-level snapshots built from a function of time, a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from console.telemetry.times import format_ts

DEPLOYED_AT = datetime(2026, 11, 29, 17, 0, tzinfo=UTC).timestamp()
TOKEN = "deployer-token-for-tests-0123456789"
"""The deployer token of the ``live`` fixture (the stand-in deployer's, in DEMO_DEPLOYER_TOKEN)."""
BASELINE_S = 15.0

Profile = Callable[[float], dict[str, float]]
"""Seconds since the deploy (negative before it) -> metric values at that second."""


def healthy(t: float, rng: np.random.Generator) -> dict[str, float]:
    """The demo service at 20 req/s, v1.0.0: no errors, ~49 ms p95, 5 % of its memory limit."""
    return {
        "error_rate": 0.0,
        "latency_p95_ms": 49.0 + float(rng.normal(0, 0.3)),
        "requests_per_second": 20.0 + float(rng.normal(0, 0.05)),
        "cpu_utilization": 0.02 + float(rng.normal(0, 0.002)),
        "memory_utilization": 0.048,
        "pod_restarts": 0.0,
    }


def snapshot_until(
    end: float, change: Callable[[float, dict[str, float]], dict[str, float]] | None = None, seed: int = 7
) -> dict:
    """Per-second points from ``DEPLOYED_AT - BASELINE_S`` to ``end`` (Unix seconds): healthy values,
    then ``change(t, values)`` applied after the deploy."""
    rng = np.random.default_rng(seed)
    metrics: dict[str, list] = {}
    t = -BASELINE_S
    while DEPLOYED_AT + t <= end + 1e-9:
        values = healthy(t, rng)
        if change is not None and t >= 0:
            values = change(t, values)
        for name, value in values.items():
            metrics.setdefault(name, []).append([format_ts(DEPLOYED_AT + t), round(value, 5)])
        t += 1.0
    return {
        "deployment": {
            "id": "dep-1",
            "service": "demo-service",
            "version": "v1.2.0-leak",
            "previous_version": "v1.0.0",
            "environment": "live-demo",
            "deployed_at": format_ts(DEPLOYED_AT),
            "deployed_by": "alice",
        },
        "metrics": metrics,
        "logs": [],
    }


@dataclass
class FakeClock:
    """Time that moves only when something sleeps."""

    now: float
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def until_done(step, data: dict, settings, clock: FakeClock, *, looks: list | None = None) -> dict:
    """Call a step that looks (collect, verify) until it is done, as an engine would, on ``clock``."""
    from console.loop.steps import run_looks

    return run_looks(step, data, settings, clock=clock, sleep=clock.sleep, looks=looks)


def services_file(tmp_path: Path, executor: str, *, prometheus: str | None = None) -> Path:
    log = tmp_path / "demo-service.log"
    if not log.exists():
        log.write_text("", encoding="utf-8")
    path = tmp_path / "services.yaml"
    text = (
        "services:\n  demo-service:\n    environment: live-demo\n"
        "    windows: {baseline_s: 15, verify_s: 30, post_action_s: 15}\n"
        f"    logs: {{type: jsonl, path: {log}}}\n"
    )
    if prometheus:
        text += (
            f"    prometheus: {{url: '{prometheus}', selector: 'service=\"demo-service\"', "
            "scrape_interval_s: 1}\n"
        )
    path.write_text(text + executor, encoding="utf-8")
    return path


@pytest.fixture
def live(settings, tmp_path, monkeypatch):
    """``live(executor_section)``: settings whose services file gives demo-service that executor."""
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)

    def configure(executor: str, **kw):
        return _replace(settings, services_file=services_file(tmp_path, executor, **kw))

    return configure


def record_revision(
    store,
    service: str,
    version: str,
    kind: str,
    at: str,
    *,
    window: tuple[str | None, str | None] = (None, None),
) -> None:
    """One event in a service's revision history, as a watched live run would leave it (``kind``:
    ``verified_healthy``, ``judged_faulty``, ...)."""
    from console.loop import revisions

    ev = revisions.event(
        service,
        version,
        kind,
        at,
        kind.replace("_", " "),
        source="loop",
        execution_id=f"E-{version}",
        window=window,
    )
    with store.db.write() as conn:
        store.revisions.add_in(conn, [ev])
