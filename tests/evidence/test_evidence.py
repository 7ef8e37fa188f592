"""Evidence you can trust, on real processes: the unseen service (livestack/unseen: prometheus_client's
default names, five handlers, steady load), Debian's Prometheus scraping it every second, the loop's
own collect and analyze steps (the early decision included), configured with ``profile: auto``.

Three lanes run side by side (each its own service, Prometheus and load), windows of 15 s before
and 25 s after a deploy:

- **faults**: one handler of five failing 30 % of its requests; a slow memory leak;
- **gap**: the same version deployed again while Prometheus is stopped for 10 s inside the window;
  then a window with no sample at all;
- **baseline**: a failing version (60 % errors, judged bad in the console's records) replaced by the
  last known-good one; and targets exporting the Go client's and OpenTelemetry's names for
  ``profile: auto``.

Nothing here guesses speed: every wait is on a condition (Prometheus holding the samples asked
for); the 10 s outage is the fault being injected.
"""

from __future__ import annotations

import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from console.domain.models import format_time, parse_time
from console.loop import outcome
from console.storage import Store
from console.telemetry import build_snapshot, load_services
from console.telemetry.prometheus import PrometheusConfig, PrometheusSource
from livestack.unseen.lane import MB, UnseenLane
from tests.evidence.conftest import require_prometheus
from tests.evidence.exporters import Exporter
from tests.loop.conftest import record_revision

pytestmark = [pytest.mark.evidence]

BASELINE_S, VERIFY_S, RPS = 15.0, 25.0, 30.0
MEMORY_QUERY = (
    "queries: {memory_utilization: 'max(process_resident_memory_bytes{job=\"shop-api\"}) / 268435456'}"
)
"""A canonical metric read with query_range (its points may be look-back copies) beside the counts."""


def _epoch(text: str) -> float:
    return parse_time(text).timestamp()


def _lane(workdir: Path, **kw: Any) -> UnseenLane:
    return UnseenLane.start(workdir, baseline_s=BASELINE_S, verify_s=VERIFY_S, rps=RPS, **kw)


def faults(workdir: Path) -> dict[str, Any]:
    lane = _lane(workdir, memory_limit=96 * MB)
    try:
        lane.wait_steady()
        cart = lane.judge(lane.deploy("v2-cart", {"errors": {"/api/cart": 0.3}}))
        lane.deploy("v1")
        lane.wait_steady()
        leak = lane.judge(lane.deploy("v2-leak", {"leak_mb_per_s": 1.5}))
        return {"cart": cart, "leak": leak}
    finally:
        lane.stop()


def gap(workdir: Path) -> dict[str, Any]:
    lane = _lane(workdir, prometheus_extra=MEMORY_QUERY)
    try:
        lane.wait_steady()
        record = lane.deploy("v1")  # the same version again: fresh noise, nothing changed
        deployed = _epoch(record["deployed_at"])
        outage: dict[str, tuple[float, float]] = {}

        def inject() -> None:
            lane.wait_scrapes(4, since=deployed)
            outage["window"] = lane.outage(10.0)

        injector = threading.Thread(target=inject)
        injector.start()
        judged = lane.judge(record)
        injector.join()
        config = load_services(lane.services_file).service("shop-api")
        lane.wait_scrapes(3, since=outage["window"][1])
        window = build_snapshot(config, record, deployed - BASELINE_S, deployed + VERIFY_S)
        stopped, back = outage["window"]
        # the post-action check over a window Prometheus spent mostly down
        metrics_only = replace(config, logs=None)
        before = build_snapshot(metrics_only, record, deployed - BASELINE_S, deployed)
        during = build_snapshot(metrics_only, record, stopped - 3, back + 1)
        dep = before.snapshot["deployment"]
        measured = outcome.judge_recovery(
            dep,
            outcome.split_baseline(before.snapshot["metrics"], dep["deployed_at"]),
            during.snapshot["metrics"],
            window_start=format_time(datetime.fromtimestamp(stopped - 3, UTC)),
            window_end=format_time(datetime.fromtimestamp(back + 1, UTC)),
            evidence=(before.snapshot.get("evidence"), during.snapshot.get("evidence")),
        )
        # a deploy announced with a deployed_at long before Prometheus had any sample
        old = {
            **record,
            "id": "old",
            "deployed_at": format_time(datetime.fromtimestamp(deployed - 7200, UTC)),
        }
        empty = lane.judge(old)
        return {
            "judged": judged,
            "window": window,
            "outage": outage["window"],
            "measured": measured,
            "empty": empty,
        }
    finally:
        lane.stop()


def _stamp(at: float) -> str:
    return format_time(datetime.fromtimestamp(at, UTC))


def baseline(workdir: Path) -> dict[str, Any]:
    exporters = {"go-svc": Exporter("go"), "otel-svc": Exporter("otel")}
    lane = None
    try:
        lane = _lane(workdir, extra_targets={job: [e.target] for job, e in exporters.items()})
        settings = lane.settings(data_dir=workdir / "data")
        lane.wait_age(VERIFY_S + 2)  # v1 has run a whole verification window: the known-good one
        store = Store(settings.db_path)
        try:
            # v1 measured healthy through its whole verification window: known-good
            start, end = time.time() - VERIFY_S - 1, time.time() - 1
            record_revision(
                store, "shop-api", "v1", "verified_healthy", _stamp(end), window=(_stamp(start), _stamp(end))
            )
            bad = lane.deploy("v1.2-bad", {"errors": {"*": 0.6}, "latency_ms": 5})
            record_revision(
                store, "shop-api", "v1.2-bad", "judged_faulty", _stamp(_epoch(bad["deployed_at"]))
            )
        finally:
            store.close()
        lane.wait_steady()  # a whole baseline of the failing version
        fixed = lane.judge(lane.deploy("v1"), settings)
        now = time.time()
        for job in ("shop-api", *exporters):
            lane.wait_scrapes(5, since=now - 30, job=job)
        profiles = {
            job: PrometheusSource(
                PrometheusConfig(
                    url=lane.prom.url, profile="auto", selector=f'job="{job}"', scrape_interval_s=1
                )
            ).fetch(now - 20, now)
            for job in ("shop-api", *exporters)
        }
        return {"fixed": fixed, "profiles": profiles}
    finally:
        if lane is not None:
            lane.stop()
        for exporter in exporters.values():
            exporter.stop()


LANES = {"faults": faults, "gap": gap, "baseline": baseline}


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every lane's results (all processes stopped before the tests read them); a lane that failed
    is its traceback, reported by the tests that need it."""
    require_prometheus()
    base = tmp_path_factory.mktemp("evidence")
    began = time.monotonic()

    def run(name: str) -> Any:
        try:
            return LANES[name](base / name)
        except Exception:
            return traceback.format_exc()

    with ThreadPoolExecutor(max_workers=len(LANES)) as pool:
        futures = {name: pool.submit(run, name) for name in LANES}
        out = {name: future.result() for name, future in futures.items()}
    print(f"evidence lanes: {time.monotonic() - began:.0f} s")
    return out


def lane(runs: dict[str, Any], name: str) -> dict[str, Any]:
    result = runs[name]
    if isinstance(result, str):
        pytest.fail(f"the {name} lane failed:\n{result}")
    return result


def _verification(judged: dict[str, Any]) -> dict[str, Any]:
    return judged["collect"]["verification"]


def test_one_handlers_fault_is_found_named_and_decided_early(runs):
    cart = lane(runs, "faults")["cart"]
    decision, verification = cart["decision"], _verification(cart)
    assert decision["verdict"] == "ROLLBACK" and decision["rule"] == "user-facing-regression"
    errors = decision["metrics"]["error_rate"]
    assert errors["basis"] == "counts" and errors["dimension"] == "/api/cart"
    assert 0.1 < errors["share"] < 0.3  # one handler of five
    assert verification["ended"] == "early" and verification["samples_after"] < VERIFY_S
    assert f"conclusive after {verification['samples_after']} real samples" in verification["reason"]
    snapshot = cart["collect"]["snapshot"]
    assert snapshot["evidence"]["profile"] == "python"
    assert "profile python picked automatically" in " ".join(verification["notes"])


def test_a_slow_leak_is_rolled_back_with_its_projection(runs):
    leak = lane(runs, "faults")["leak"]
    decision = leak["decision"]
    assert decision["verdict"] == "ROLLBACK" and decision["rule"] == "resource-climbs-to-limit"
    memory = decision["metrics"]["memory_utilization"]
    assert memory["basis"] == "trend" and memory["projection"].startswith("reaches its limit in ~")
    assert "Memory leak introduced by v2-leak" in decision["root_cause"]


def test_gaps_from_a_stopped_prometheus_are_never_counted(runs):
    result = lane(runs, "gap")
    stopped, back = result["outage"]
    window = result["window"]
    # no point, counted or queried, stands in the outage: no look-back copy anywhere
    for name, points in window.snapshot["metrics"].items():
        inside = [ts for ts, _ in points if stopped + 1.5 < _epoch(ts) <= back]
        assert inside == [], name
    evidence = window.snapshot["evidence"]
    scrapes = [t for s in evidence["requests"] for t, _ in s["points"]]
    assert not [t for t in scrapes if stopped + 1.5 < t <= back]
    assert any(
        "had no real sample behind them (Prometheus' look-back copies): left out" in n for n in window.notes
    )
    verification = _verification(result["judged"])
    assert verification["samples_after"] <= VERIFY_S - 10  # the outage's seconds are not samples
    assert any("skipped: Prometheus" in n for n in verification["notes"])  # the polls it missed


def test_a_redeploy_of_the_same_version_with_fresh_noise_is_not_rolled_back(runs):
    decision = lane(runs, "gap")["judged"]["decision"]
    assert decision["verdict"] == "CONTINUE" and decision["rule"] == "healthy"


def test_the_post_action_check_needs_real_samples(runs):
    measured = lane(runs, "gap")["measured"]
    assert measured["status"] == "inconclusive"
    assert measured["reason"].startswith("not enough real samples to judge recovery")


def test_an_empty_window_never_yields_continue(runs):
    empty = lane(runs, "gap")["empty"]
    decision, verification = empty["decision"], _verification(empty)
    assert decision["verdict"] == "ESCALATE" and decision["rule"] == "insufficient-evidence"
    assert verification["samples_after"] == 0
    assert any("deployed_at is 2.0 h old" in n for n in verification["notes"])
    assert any(a["name"] == "notify_only" for a in decision["actions"])


def test_an_unhealthy_baseline_is_replaced_and_named(runs):
    fixed = lane(runs, "baseline")["fixed"]
    decision = fixed["decision"]
    assert decision["verdict"] == "CONTINUE", decision["reasoning"]
    assert "Baseline: the last known-good version v1 (healthy, verified" in decision["summary"]
    assert "of its requests failed (5xx)" in decision["summary"]
    assert "the previous version v1.2-bad was already judged bad" in decision["summary"]
    history = fixed["collect"]["snapshot"]["evidence"]["history"]
    # v1 is the reference (its own measured window), not a rollback target of a v1 deploy
    assert history == {"bad_versions": ["v1.2-bad"], "open_incident": None, "known_good_version": None}


@pytest.mark.parametrize(
    ("job", "profile", "dimension", "status", "routes"),
    [
        ("shop-api", "python", "handler", "code", 5),
        ("go-svc", "go", "handler", "code", 2),
        ("otel-svc", "opentelemetry", "http_route", "http_response_status_code", 2),
    ],
)
def test_profile_auto_picks_the_instrumentations_profile(runs, job, profile, dimension, status, routes):
    fetched = lane(runs, "baseline")["profiles"][job]
    evidence = fetched.evidence
    assert evidence is not None and evidence.profile == profile
    assert evidence.profile_reason.startswith(f"profile {profile} picked automatically: the selector has ")
    assert (evidence.dimension_label, evidence.status_label) == (dimension, status)
    assert (
        len({s.dimension for s in evidence.requests}) == routes
        and sum(sum(s.counts) for s in evidence.requests) > 0
    )
    assert {"error_rate", "latency_p95_ms", "requests_per_second"} <= set(fetched.metrics)
