"""Deterministic generator of the demo scenarios in mock-data/ (and of unseen variants for tests).

    .venv/bin/python mock-data/generate.py          # rewrite every scenario file
    .venv/bin/python mock-data/generate.py --check  # fail if a file differs from what would be written

Each series is built from a level per minute (baseline level plus effects: steps, ramps, bumps around
the deploy) and realistic noise: error_rate is a binomial ratio of the minute's requests (so a
low-traffic service gets noisy ratios by itself), latency is log-normal, memory has a GC sawtooth,
restarts are Poisson. Logs are a sample of INFO traffic plus the WARN/ERROR lines of the story.

Each file also holds a recorded post-action segment (``post_action``): the ``POST_MINUTES`` after
the verification window, twice. ``executed``: what follows when a remediation ran (the story's
effects and error lines gone: the previous version is back; or, for a story a rollback cannot fix,
``post_executed="persists"``, unchanged). ``not_executed``: what follows when nothing ran (the
story goes on). The loop's ``verify`` step judges the one that matches what it did, so a scenario's
outcome is measured like a live one (and labelled simulated). The segments use their own random
streams, so the snapshot part of a file does not change when they do.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DEPLOYED_AT = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
POST_MINUTES = 20
"""Length of the recorded post-action segments."""


@dataclass(frozen=True)
class Effect:
    """A change of one metric's level. Minutes are relative to the deploy (negative = before).

    kind "step": level ``to`` from ``start`` until ``end`` (None = to the end of the snapshot);
    "ramp": linear from the base level at ``start`` to ``to`` at ``end``, then held (or back to base
    at ``release`` if given). Levels are absolute (fractions for ratios)."""

    metric: str
    kind: str
    start: float
    to: float
    end: float | None = None
    release: float | None = None


@dataclass(frozen=True)
class LogEvent:
    """A WARN/ERROR line repeated ``per_min`` times a minute between ``start`` and ``end``."""

    level: str
    message: str
    start: float
    end: float | None = None
    per_min: float = 1.0
    source: str | None = None


@dataclass
class Spec:
    id: str
    title: str
    description: str
    expected_verdict: str
    service: str
    version: str
    previous_version: str
    seed: int
    deployed_by: str | None = None
    baseline_min: int = 60
    after_min: int = 40
    deployed_at: datetime = DEFAULT_DEPLOYED_AT
    rps: float = 120.0
    error: float = 0.008
    latency: float = 180.0
    cpu: float = 0.42
    memory: float = 0.55
    restarts: float = 0.0
    rps_effects_latency: bool = True
    """Latency and cpu follow traffic (a spike in requests/s slows the service down)."""
    effects: list[Effect] = field(default_factory=list)
    events: list[LogEvent] = field(default_factory=list)
    info_per_min: float = 6.0
    extra_metrics: dict[str, float] = field(default_factory=dict)
    post_executed: str = "recovers"
    """What the ``executed`` post-action segment shows: "recovers" (a remediation brings the
    pre-deploy behaviour back) or "persists" (the cause is outside the service: nothing it can do
    fixes it)."""


def _levels(
    spec: Spec, metric: str, base: float, minutes: np.ndarray, effects: list[Effect] | None = None
) -> np.ndarray:
    level = np.full(minutes.shape, base, dtype=float)
    for eff in spec.effects if effects is None else effects:
        if eff.metric != metric:
            continue
        end = math.inf if eff.end is None else eff.end
        if eff.kind == "step":
            mask = (minutes >= eff.start) & (minutes < end)
            level[mask] = eff.to
        elif eff.kind == "ramp":
            span = max(end - eff.start, 1e-9) if math.isfinite(end) else 1.0
            frac = np.clip((minutes - eff.start) / span, 0.0, 1.0)
            ramp = base + (eff.to - base) * frac
            active = minutes >= eff.start
            if eff.release is not None:
                active &= minutes < eff.release
            level = np.where(active, ramp, level)
        else:
            raise ValueError(f"unknown effect kind {eff.kind!r}")
    return level


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


_PATHS = [
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/users/me",
    "/api/v1/cart",
    "/health",
    "/api/v1/items",
]


def _series(
    spec: Spec, minutes: np.ndarray, stamps: list[str], rng: np.random.Generator, effects: list[Effect]
) -> tuple[dict[str, list[list]], np.ndarray, np.ndarray]:
    """The metric series over ``minutes`` (and the load factor and latency level the logs follow)."""
    n = minutes.size
    rps_level = _levels(spec, "requests_per_second", spec.rps, minutes, effects)
    rps = np.maximum(rps_level * (1 + 0.04 * rng.standard_normal(n)), 0.0)
    load = rps_level / spec.rps if spec.rps_effects_latency else np.ones(n)
    requests = rng.poisson(np.maximum(rps * 60.0, 0.0))
    err_p = np.clip(_levels(spec, "error_rate", spec.error, minutes, effects), 0.0, 1.0)
    errors = rng.binomial(requests, err_p)
    error_rate = np.where(requests > 0, errors / np.maximum(requests, 1), 0.0)
    lat_level = _levels(spec, "latency_p95_ms", spec.latency, minutes, effects) * np.maximum(load, 1.0) ** 0.9
    latency = lat_level * np.exp(0.08 * rng.standard_normal(n))
    cpu_level = _levels(spec, "cpu_utilization", spec.cpu, minutes, effects) * np.maximum(load, 0.3) ** 0.8
    cpu = np.clip(cpu_level + 0.025 * rng.standard_normal(n), 0.01, 1.0)
    sawtooth = 0.02 * ((np.arange(n) % 7) / 6.0 - 0.5)
    memory = np.clip(
        _levels(spec, "memory_utilization", spec.memory, minutes, effects)
        + sawtooth
        + 0.006 * rng.standard_normal(n),
        0.01,
        1.0,
    )
    restarts = rng.poisson(_levels(spec, "pod_restarts", spec.restarts, minutes, effects)).astype(float)

    series = {
        "requests_per_second": np.round(rps, 3),
        "error_rate": np.round(error_rate, 5),
        "latency_p95_ms": np.round(latency, 1),
        "cpu_utilization": np.round(cpu, 4),
        "memory_utilization": np.round(memory, 4),
        "pod_restarts": restarts,
    }
    for name, base in spec.extra_metrics.items():
        level = _levels(spec, name, base, minutes, effects)
        series[name] = np.round(level * (1 + 0.05 * rng.standard_normal(n)), 4)
    metrics = {
        name: [[s, float(v)] for s, v in zip(stamps, values, strict=True)] for name, values in series.items()
    }
    return metrics, load, lat_level


def _logs(
    spec: Spec,
    minutes: np.ndarray,
    times: list[datetime],
    rng: np.random.Generator,
    load: np.ndarray,
    lat_level: np.ndarray,
    events: list[LogEvent],
    started: dict[float, str],
) -> list[dict]:
    """INFO traffic and the story's WARN/ERROR lines; ``started`` maps a minute to the version whose
    start-up line it holds."""
    logs: list[tuple[datetime, str, str, str | None]] = []
    pod = f"{spec.service}-{rng.integers(0x10000000, 0xFFFFFFFF):08x}"
    for i, m in enumerate(minutes):
        start = times[i]
        info_n = rng.poisson(spec.info_per_min * min(load[i], 3.0))
        for _ in range(info_n):
            ts = start + timedelta(seconds=float(rng.uniform(0, 60)))
            path = _PATHS[int(rng.integers(len(_PATHS)))]
            ms = int(lat_level[i] * rng.uniform(0.2, 0.9))
            logs.append((ts, "INFO", f"GET {path} 200 {ms}ms request_id={rng.integers(1 << 40):010x}", pod))
        if float(m) in started:
            logs.append((start, "INFO", f"Started {spec.service} version {started[float(m)]}", pod))
        for ev in events:
            end = math.inf if ev.end is None else ev.end
            if not ev.start <= m < end:
                continue
            for _ in range(rng.poisson(ev.per_min)):
                ts = start + timedelta(seconds=float(rng.uniform(0, 60)))
                text = ev.message.format(
                    ms=int(rng.integers(800, 3000)),
                    id=int(rng.integers(10000, 99999)),
                    n=int(rng.integers(1, 9)),
                    hex=f"{rng.integers(1 << 40):010x}",
                )
                logs.append((ts, ev.level, text, ev.source or pod))
    logs.sort(key=lambda r: r[0])
    return [
        {"ts": _iso(ts), "level": level, "message": msg, **({"source": src} if src else {})}
        for ts, level, msg, src in logs
    ]


def _segment(spec: Spec, executed: bool) -> dict:
    """The recorded ``POST_MINUTES`` after the verification window (see the module docstring)."""
    rng = np.random.default_rng(spec.seed * 1000 + (1 if executed else 2))
    minutes = np.arange(spec.after_min, spec.after_min + POST_MINUTES, dtype=float)
    times = [spec.deployed_at + timedelta(minutes=float(m)) for m in minutes]
    recovers = executed and spec.post_executed == "recovers"
    effects = [] if recovers else spec.effects
    events = [] if recovers else spec.events
    metrics, load, lat_level = _series(spec, minutes, [_iso(t) for t in times], rng, effects)
    started = {float(spec.after_min): spec.previous_version} if recovers else {}
    return {"metrics": metrics, "logs": _logs(spec, minutes, times, rng, load, lat_level, events, started)}


def build(spec: Spec) -> dict:
    rng = np.random.default_rng(spec.seed)
    minutes = np.arange(-spec.baseline_min, spec.after_min, dtype=float)
    times = [spec.deployed_at + timedelta(minutes=float(m)) for m in minutes]
    metrics, load, lat_level = _series(spec, minutes, [_iso(t) for t in times], rng, spec.effects)
    logs = _logs(spec, minutes, times, rng, load, lat_level, spec.events, {0.0: spec.version})
    doc = {
        "scenario": {
            "id": spec.id,
            "title": spec.title,
            "description": spec.description,
            "expected_verdict": spec.expected_verdict,
        },
        "deployment": {
            "id": f"deploy-{spec.id}",
            "service": spec.service,
            "version": spec.version,
            "previous_version": spec.previous_version,
            "environment": "production",
            "deployed_at": _iso(spec.deployed_at),
            "deployed_by": spec.deployed_by,
        },
        "metrics": metrics,
        "logs": logs,
    }
    return doc


def build_file(spec: Spec) -> dict:
    """What a scenario file holds: the snapshot of :func:`build` and its recorded post-action segments."""
    return {
        **build(spec),
        "post_action": {"executed": _segment(spec, True), "not_executed": _segment(spec, False)},
    }


# --- the scenarios ----------------------------------------------------------------------------------

OOM = "java.lang.OutOfMemoryError: Java heap space"
HIKARI = "HikariPool-1 - Connection is not available, request timed out after 30000ms."
UPSTREAM = "upstream payments-api returned 503 Service Unavailable (request_id={hex})"


def scenarios() -> list[Spec]:
    return [
        Spec(
            id="memory-leak",
            title="Memory leak after payment-service v1.2.3",
            description="Memory climbs from 55% to 92% of the limit after the deploy; the JVM throws "
            "OutOfMemoryError and about 35% of requests fail.",
            expected_verdict="ROLLBACK",
            service="payment-service",
            version="v1.2.3",
            previous_version="v1.2.2",
            deployed_by="ci-bot",
            seed=101,
            effects=[
                Effect("memory_utilization", "ramp", 0, 0.92, 22),
                Effect("error_rate", "ramp", 8, 0.35, 20),
                Effect("latency_p95_ms", "ramp", 8, 900.0, 20),
                Effect("cpu_utilization", "ramp", 5, 0.78, 20),
            ],
            events=[
                LogEvent("WARN", "GC pause (G1 Evacuation Pause) took {ms}ms, heap 94% full", 6, None, 2.0),
                LogEvent("ERROR", OOM, 12, None, 3.0),
                LogEvent(
                    "ERROR",
                    "Request POST /api/v1/payments failed: 500 Internal Server Error (payment_id={id})",
                    10,
                    None,
                    4.0,
                ),
            ],
        ),
        Spec(
            id="healthy-hotfix",
            title="Healthy hotfix payment-service v1.2.4-hotfix",
            description="The hotfix deploy keeps every metric steady: 0.8% errors, stable latency "
            "and memory.",
            expected_verdict="CONTINUE",
            service="payment-service",
            version="v1.2.4-hotfix",
            previous_version="v1.2.3",
            deployed_by="alice",
            seed=102,
            error=0.008,
            events=[
                LogEvent(
                    "WARN", "Retrying card authorization for payment_id={id} (attempt {n})", -60, None, 0.3
                )
            ],
        ),
        Spec(
            id="db-timeouts",
            title="Database timeouts after user-service v1.3.0",
            description="The new version holds DB connections too long: the Hikari pool is exhausted, "
            "queries time out after 30 s and about 45% of requests fail.",
            expected_verdict="ROLLBACK",
            service="user-service",
            version="v1.3.0",
            previous_version="v1.2.9",
            deployed_by="bob",
            seed=103,
            latency=220.0,
            effects=[
                Effect("error_rate", "step", 3, 0.45),
                Effect("latency_p95_ms", "step", 3, 30000.0),
                Effect("cpu_utilization", "step", 3, 0.3),
            ],
            events=[
                LogEvent("ERROR", HIKARI, 3, None, 5.0),
                LogEvent(
                    "ERROR",
                    "java.sql.SQLTimeoutException: query timed out after 30000ms (user_id={id})",
                    3,
                    None,
                    3.0,
                ),
            ],
        ),
        Spec(
            id="traffic-spike-before-deploy",
            title="Traffic spike that began before checkout-service v4.8.1",
            description="A marketing campaign nearly triples traffic 20 minutes before the deploy; "
            "latency and CPU follow the load and come back as traffic subsides after the deploy.",
            expected_verdict="CONTINUE",
            service="checkout-service",
            version="v4.8.1",
            previous_version="v4.8.0",
            seed=104,
            rps=200.0,
            latency=150.0,
            effects=[
                Effect("requests_per_second", "step", -20, 520.0, 10),
                Effect("error_rate", "step", -20, 0.015, 10),
            ],
            events=[LogEvent("WARN", "Request queue depth {id} above soft limit", -20, 10, 2.0)],
        ),
        Spec(
            id="crash-loop",
            title="Crash loop after inventory-service v2.0.0",
            description="The new version panics on a nil config value at start-up; pods restart again and "
            "again (CrashLoopBackOff) and 12% of requests fail on the remaining pods.",
            expected_verdict="ROLLBACK",
            service="inventory-service",
            version="v2.0.0",
            previous_version="v1.9.4",
            seed=105,
            effects=[
                Effect("pod_restarts", "step", 1, 0.5),
                Effect("error_rate", "step", 1, 0.12),
                Effect("latency_p95_ms", "step", 1, 320.0),
            ],
            events=[
                LogEvent(
                    "ERROR",
                    "panic: runtime error: invalid memory address or nil pointer dereference",
                    1,
                    None,
                    0.5,
                ),
                LogEvent(
                    "WARN",
                    "Back-off restarting failed container inventory in pod inventory-{hex} "
                    "(CrashLoopBackOff)",
                    1,
                    None,
                    0.5,
                    source="kubelet",
                ),
            ],
        ),
        Spec(
            id="latency-regression",
            title="Latency regression after search-service v5.2.0",
            description="A new ranking step runs an unindexed query: p95 latency goes from 240 ms "
            "to about 620 ms while errors stay flat.",
            expected_verdict="ROLLBACK",
            service="search-service",
            version="v5.2.0",
            previous_version="v5.1.7",
            seed=106,
            latency=240.0,
            effects=[Effect("latency_p95_ms", "step", 2, 620.0), Effect("cpu_utilization", "step", 2, 0.55)],
            events=[LogEvent("WARN", "Slow query on table ranking_features took {ms}ms", 2, None, 3.0)],
        ),
        Spec(
            id="transient-blip",
            title="Warm-up blip after api-gateway v7.0.3",
            description="Cold caches after the deploy cause 4 minutes of errors and slow responses; "
            "everything is back to baseline for the rest of the window.",
            expected_verdict="CONTINUE",
            service="api-gateway",
            version="v7.0.3",
            previous_version="v7.0.2",
            seed=107,
            rps=400.0,
            error=0.005,
            effects=[Effect("error_rate", "step", 0, 0.06, 4), Effect("latency_p95_ms", "step", 0, 650.0, 4)],
            events=[
                LogEvent("WARN", "Cache miss storm on route table; warming cache ({n} shards)", 0, 4, 6.0)
            ],
        ),
        Spec(
            id="dependency-outage",
            title="Upstream outage during orders-service v3.1.0",
            description="payments-api starts returning 503 fourteen minutes before the deploy; "
            "orders-service errors rise to about 28% and stay there, unchanged by the deploy.",
            expected_verdict="ESCALATE",
            service="orders-service",
            version="v3.1.0",
            previous_version="v3.0.8",
            seed=108,
            error=0.006,
            effects=[Effect("error_rate", "step", -14, 0.28), Effect("latency_p95_ms", "step", -14, 480.0)],
            events=[LogEvent("ERROR", UPSTREAM, -14, None, 6.0)],
            post_executed="persists",  # the upstream is down: nothing done to orders-service fixes it
        ),
        Spec(
            id="preexisting-errors",
            title="Known errors unchanged by notification-service v2.4.0",
            description="About 4.5% of e-mails have failed for days (a bad SMTP relay); the deploy "
            "changes nothing about it.",
            expected_verdict="CONTINUE",
            service="notification-service",
            version="v2.4.0",
            previous_version="v2.3.5",
            seed=109,
            rps=40.0,
            error=0.045,
            events=[
                LogEvent(
                    "ERROR",
                    "Failed to deliver e-mail to recipient {id}: SMTP 421 try again later",
                    -60,
                    None,
                    2.0,
                )
            ],
            post_executed="persists",  # the SMTP relay is outside the service
        ),
        Spec(
            id="performance-improvement",
            title="Faster report-service v1.9.0",
            description="The new version caches aggregates: p95 latency drops from 820 ms to 310 ms and CPU "
            "from 70% to 45%. Nothing got worse.",
            expected_verdict="CONTINUE",
            service="report-service",
            version="v1.9.0",
            previous_version="v1.8.2",
            seed=110,
            latency=820.0,
            cpu=0.70,
            effects=[Effect("latency_p95_ms", "step", 1, 310.0), Effect("cpu_utilization", "step", 1, 0.45)],
        ),
        Spec(
            id="low-traffic-noise",
            title="Noisy ratios on the low-traffic admin-portal v0.9.2",
            description="admin-portal serves about 12 requests a minute: one failed request is an 8% error "
            "rate for that minute. The deploy changes nothing; the ratios are just noisy.",
            expected_verdict="CONTINUE",
            service="admin-portal",
            version="v0.9.2",
            previous_version="v0.9.1",
            seed=111,
            rps=0.2,
            error=0.02,
            latency=300.0,
            info_per_min=2.0,
            events=[LogEvent("WARN", "Session {id} expired, redirecting to login", -60, None, 0.2)],
        ),
        Spec(
            id="database-outage-before-deploy",
            title="Database failing before billing-service v6.3.2",
            description="The primary database starts timing out 18 minutes before the deploy (storage "
            "latency); errors sit near 20% before and after the deploy.",
            expected_verdict="ESCALATE",
            service="billing-service",
            version="v6.3.2",
            previous_version="v6.3.1",
            seed=112,
            effects=[
                Effect("error_rate", "step", -18, 0.20),
                Effect("latency_p95_ms", "step", -18, 2400.0),
                Effect("db_query_p95_ms", "step", -18, 1900.0),
            ],
            extra_metrics={"db_query_p95_ms": 35.0},
            events=[
                LogEvent("ERROR", HIKARI, -18, None, 3.0),
                LogEvent(
                    "ERROR",
                    "org.postgresql.util.PSQLException: canceling statement due to statement timeout",
                    -18,
                    None,
                    2.0,
                ),
            ],
        ),
    ]


def write_all(target: Path = HERE, check: bool = False) -> list[Path]:
    """Write (or with check=True, compare) every scenario file; returns the paths that differ."""
    differ = []
    for spec in scenarios():
        path = target / f"{spec.id}.json"
        text = json.dumps(build_file(spec), indent=None, separators=(",", ":")) + "\n"
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            differ.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return differ


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    changed = write_all(check=check)
    for p in changed:
        print(("differs: " if check else "wrote: ") + p.name)
    sys.exit(1 if check and changed else 0)
