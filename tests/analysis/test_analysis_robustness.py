"""Any valid snapshot gets a well-formed decision: no exception, verdict and actions from the
registry, confidence in [0, 1] (property-based)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.analysis import analyze_document
from console.domain.actions import ACTIONS
from console.domain.models import Verdict
from tests.conftest import series, snapshot_doc
from tests.properties import examples

NAMES = ["error_rate", "latency_p95_ms", "cpu_utilization", "memory_utilization", "pod_restarts",
         "requests_per_second", "queue_depth"]  # fmt: skip
VALUES = st.one_of(
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0]),
)
LINES = st.sampled_from([
    ("INFO", "GET /health 200 3ms"),
    ("ERROR", "java.lang.OutOfMemoryError: Java heap space"),
    ("ERROR", "upstream billing returned 503 Service Unavailable"),
    ("WARN", "Back-off restarting failed container app (CrashLoopBackOff)"),
    ("FATAL", "panic: runtime error: invalid memory address or nil pointer dereference"),
])  # fmt: skip


@st.composite
def documents(draw):
    metrics = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5)):
        start = draw(st.integers(min_value=-90, max_value=10))
        values = draw(st.lists(VALUES, max_size=120))
        metrics[name] = series(values, start_min=start)
    logs = []
    for minute, (level, message) in draw(st.lists(st.tuples(st.integers(-60, 60), LINES), max_size=30)):
        logs.append({"ts": f"2026-11-20T{14 + minute // 60:02d}:{minute % 60:02d}:00Z", "level": level,
                     "message": message})  # fmt: skip
    return snapshot_doc(metrics, logs)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_valid_snapshot_gets_a_well_formed_decision(doc):
    d = analyze_document(doc)
    assert d.verdict in Verdict
    assert 0.0 <= d.confidence <= 1.0
    assert d.actions and all(a.name in ACTIONS and a.risk is ACTIONS[a.name].risk for a in d.actions)
    assert d.summary and d.root_cause
    if d.guards:
        assert d.verdict is Verdict.ROLLBACK
    if d.verdict is Verdict.ROLLBACK:
        assert [a.name for a in d.actions][:2] == ["rollback_deployment", "collect_diagnostics"]
    d.to_dict()
