"""Action effectiveness from measured outcomes: per root-cause category and action, how often the
action, when it really ran, was followed by a resolved outcome.

- Only **remediations that ran** count (``rollback_deployment``, ``restart_pod``,
  ``scale_deployment``, ``increase_resources``, ``failover_database`` with status ``done`` and not
  a server dry run); a failed or refused action says nothing about what the action does.
- Only **conclusive measurements** count: ``resolved`` is a success, ``not_resolved`` a failure,
  ``inconclusive`` (or no measurement) is left out.
- **Simulated** runs (scenarios, or a service without a real executor) are counted apart
  (``simulated_successes`` / ``simulated_total``) and never enter the confidence or the sentence:
  a recorded scenario segment shows what the scenario's author wrote, not what the action does.
- ``confidence = success rate x min(n / 10, 1)``: ten real runs are needed for full weight.

Pure functions over outcome records (``console/loop/steps.py``'s ``record``, which keeps the
root-cause category in ``outcome.category``); the store keeps the few fields this needs beside
each record and ``Store.outcomes.effectiveness_rows()`` returns them in the record's shape. The policy
(``console/loop/policy.py``) reads the table only when ``settings.policy_use_effectiveness`` is on,
and only to route more strictly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.domain.actions import REMEDIATIONS
from console.loop.outcome import NOT_RESOLVED, RESOLVED
from console.settings import Settings

FULL_WEIGHT_RUNS = 10
"""Real runs needed before the success rate counts in full."""

CRITICAL_CATEGORIES = (
    "out_of_memory",
    "crash_loop",
    "panic",
    "db_timeout",
    "connection_pool",
    "upstream_5xx",
)
GUARD_CATEGORIES = {
    "memory_utilization": "out_of_memory",
    "pod_restarts": "crash_loop",
    "error_rate": "error_rate",
}
METRIC_CATEGORIES = {
    "memory_utilization": "out_of_memory",  # a climb to the limit (trend) decided before any guard or log
    "error_rate": "error_rate",
    "latency_p95_ms": "latency",
    "pod_restarts": "crash_loop",
}
CATEGORY_WORDS = {
    "out_of_memory": "out-of-memory",
    "crash_loop": "crash-loop",
    "panic": "panic",
    "db_timeout": "database-timeout",
    "connection_pool": "connection-pool",
    "upstream_5xx": "upstream-5xx",
    "error_rate": "error-rate",
    "latency": "latency",
    "unknown": "unattributed",
}


@dataclass(frozen=True)
class Effectiveness:
    category: str
    action: str
    successes: int
    total: int
    simulated_successes: int = 0
    simulated_total: int = 0

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.total if self.total else None

    @property
    def confidence(self) -> float:
        rate = self.success_rate
        return 0.0 if rate is None else rate * min(self.total / FULL_WEIGHT_RUNS, 1.0)

    @property
    def sentence(self) -> str:
        """ "rollback_deployment resolved 9 of 10 out-of-memory regressions" (real runs only)."""
        what = f"{CATEGORY_WORDS.get(self.category, self.category.replace('_', '-'))} regressions"
        if self.total:
            text = f"{self.action} resolved {self.successes} of {self.total} {what}"
        else:
            text = f"{self.action} has no measured real run on {what} yet"
        if self.simulated_total:
            text += f" ({self.simulated_successes} of {self.simulated_total} in simulated runs, not counted)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "action": self.action,
            "successes": self.successes,
            "total": self.total,
            "success_rate": None if self.success_rate is None else round(self.success_rate, 4),
            "confidence": round(self.confidence, 4),
            "simulated_successes": self.simulated_successes,
            "simulated_total": self.simulated_total,
            "sentence": self.sentence,
        }


def _count(value: object) -> float:
    """A pattern's line count for ranking; anything that is not a finite number (a record step's
    input comes from outside: text, infinity) ranks as 0 instead of raising."""
    if isinstance(value, bool):
        return 0.0
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def root_cause_category(decision: Mapping[str, Any]) -> str:
    """The decision's root-cause category: a critical log category new since the deploy (the most
    lines first), else the metric behind a fired guard, else a regressed user-facing metric, else
    ``unknown``."""
    raw_patterns = decision.get("log_patterns")
    patterns = [p for p in raw_patterns if isinstance(p, Mapping)] if isinstance(raw_patterns, list) else []
    fresh = [
        p
        for p in patterns
        if p.get("category") in CRITICAL_CATEGORIES
        and p.get("status") in ("new", "surging")
        and str(p.get("level", "")).upper() in ("ERROR", "WARN", "WARNING", "CRITICAL", "FATAL")
    ]
    if fresh:
        best = max(fresh, key=lambda p: (_count(p.get("count_after")), str(p.get("category"))))
        return str(best["category"])
    guards = decision.get("guards")
    for guard in guards if isinstance(guards, list) else []:
        metric = str(guard).split(" ", 1)[0]
        if metric in GUARD_CATEGORIES:
            return GUARD_CATEGORIES[metric]
    metrics = decision.get("metrics") or {}
    items = metrics.values() if isinstance(metrics, Mapping) else metrics if isinstance(metrics, list) else []
    regressed = {
        str(m.get("name"))
        for m in items
        if isinstance(m, Mapping) and m.get("classification") in ("High", "Low")
    }
    for name, category in METRIC_CATEGORIES.items():
        if name in regressed:
            return category
    return "unknown"


def outcome_of(record: Mapping[str, Any]) -> str | None:
    measured = record.get("measured")
    status = measured.get("status") if isinstance(measured, Mapping) else None
    return status if status in (RESOLVED, NOT_RESOLVED) else None


def remediations_run(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    executed = record.get("executed") or []
    return [
        a
        for a in executed
        if isinstance(a, Mapping)
        and a.get("name") in REMEDIATIONS
        and a.get("status") == "done"
        and not a.get("dry_run")
    ]


def action_effectiveness(records: Iterable[Mapping[str, Any]]) -> list[Effectiveness]:
    """The table, sorted by category then action. A record with ``times`` counts that many times
    (``Store.outcomes.effectiveness_rows`` groups identical ones)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for record in records:
        status = outcome_of(record)
        if status is None:
            continue
        times = record.get("times", 1)  # the store groups identical records (effectiveness_rows)
        times = times if isinstance(times, int) and not isinstance(times, bool) and times > 0 else 1
        outcome = record.get("outcome") if isinstance(record.get("outcome"), Mapping) else {}
        category = outcome.get("category")  # kept by the record step; older records: from the decision
        if not isinstance(category, str) or not category:
            decision = record.get("decision") if isinstance(record.get("decision"), Mapping) else {}
            category = root_cause_category(decision)
        for action in remediations_run(record):
            simulated = action.get("simulated") is True or outcome.get("simulated") is True
            row = counts.setdefault((category, str(action["name"])), [0, 0, 0, 0])
            offset = 2 if simulated else 0
            row[offset + 1] += times
            if status == RESOLVED:
                row[offset] += times
    return [Effectiveness(category, action, *row) for (category, action), row in sorted(counts.items())]


def lookup(table: Iterable[Effectiveness], category: str, action: str) -> Effectiveness | None:
    return next((e for e in table if e.category == category and e.action == action), None)


def load_effectiveness(settings: Settings) -> list[Effectiveness]:
    """The table from the console's store (an empty one when the store cannot be read)."""
    from console.storage import Store

    try:
        store = Store(settings.db_path)
    except Exception:  # a policy input, never a reason to fail a run
        return []
    try:
        return action_effectiveness(store.outcomes.effectiveness_rows())
    finally:
        store.close()
