"""From per-metric judgements and log patterns to a :class:`Decision`.

The verdict is the first rule of :data:`RULES` that applies: an ordered table of named rules, each a
predicate over the gathered :class:`Facts`, a verdict, a reason, and the evidence it contributes to
the confidence. The rule that fired is recorded in the decision (``Decision.rule``), shown on the
approval card and in the training export. In short, strictest first:

1. **ROLLBACK** when a hard guard fires (see ``metrics.check_guard``), when a metric users feel
   (``error_rate``, ``latency_p95_ms``, ``pod_restarts``, ``failed_scrapes``) regressed after the
   deploy and persisted, when a resource climbs to its limit within the horizon
   (:mod:`console.analysis.trends`), or when an attributable regression is corroborated by new
   ERROR log patterns with a known root-cause category. On a low-traffic service an ``error_rate``
   rise alone is a ratio of a handful of requests: it never rolls back on its own. A ROLLBACK whose
   only target is a version already judged bad is an ESCALATE (``no-safe-rollback-target``).
2. **ESCALATE** when the evidence is insufficient (too few real samples of the metrics that matter:
   never a CONTINUE on an empty window), when the baseline is unhealthy and there is nothing healthy
   to compare with, or when something needs a human but is not the deploy's fault or not proven to
   be: a degradation whose onset is before the deploy and which is still going on, a regression of a
   resource metric only, a low-traffic error-ratio rise, new ERROR patterns in a critical category
   while the metrics look fine.
3. **CONTINUE** otherwise (including improvements, recovered blips, unchanged pre-existing errors).

Confidence (:func:`confidence`, the one place it is computed; documented, never random). Each piece
of evidence *i* has a strength ``e_i`` in [0, 1): a metric's ``0.8 x`` its judgement's strength (for
points ``|Cliff's delta| x (1 - exp(-excess))``, for counts from the always-valid p-value, see
``sequential.strength``; half that for an error ratio on a low-traffic service); a fired guard 0.9; a
level without a baseline 0.5; a corroborating log pattern ``0.6 x (1 - exp(-n/20))`` for ``n``
lines after the deploy. ``E = 1 - prod(1 - e_i)`` combines agreeing evidence. ``coverage`` =
``min(1, real samples after the deploy / 30)`` is how much of a full verification window was seen.

* ROLLBACK: ``0.5 + 0.49 x E x coverage``,
* ESCALATE: ``0.4 + 0.45 x E x coverage``,
* CONTINUE: ``(0.5 + 0.45 x coverage x metric_coverage) x (1 - 0.5 x N) x volume``, where
  ``metric_coverage`` is the share of error_rate/latency_p95_ms present with data, ``N`` the strongest
  near miss (transient or pre-existing evidence) and ``volume`` 0.8 on a low-traffic service, else 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from console.analysis.metrics import (
    LOW_TRAFFIC_RPS,
    MetricJudgement,
    absolute_alarm,
    ago_text,
    check_guard,
    format_value,
)
from console.analysis.traffic import Traffic
from console.domain.actions import ROLLBACK, get_action
from console.domain.evidence import History
from console.domain.models import (
    Classification,
    Decision,
    Deployment,
    LogPattern,
    RecommendedAction,
    Severity,
    Verdict,
)

USER_FACING = ("error_rate", "latency_p95_ms", "pod_restarts", "failed_scrapes")
KEY_METRICS = ("error_rate", "latency_p95_ms", "memory_utilization", "requests_per_second")
"""Quoted with their numbers in a CONTINUE summary."""
RATIO_METRICS = frozenset({"error_rate"})
CRITICAL_LOG_CATEGORIES = frozenset(
    {"out_of_memory", "db_timeout", "connection_pool", "crash_loop", "panic", "upstream_5xx"}
)
ERROR_LEVELS = frozenset({"ERROR", "ERR", "SEVERE", "CRITICAL", "CRIT", "FATAL", "ALERT", "EMERG", "PANIC"})
WARN_LEVELS = frozenset({"WARN", "WARNING"})
WARN_CATEGORIES = frozenset({"crash_loop", "out_of_memory", "panic"})
"""Kubernetes reports BackOff/OOMKilled as Warning events: these categories count even at WARN."""
LOG_ONLY_ESCALATE_COUNT = 10
"""New critical-category ERROR lines after the deploy that escalate even when metrics look fine."""
PRE_EXISTING_LOG_RATIO = 20
"""A surging pattern with more than 1/20 of its post-deploy lines before the deploy is pre-existing."""
LOAD_ESCALATE_RISE = 2.0
"""Latency at least this many times its baseline under more traffic: a capacity problem to escalate."""
FULL_WINDOW_POINTS = 30
GUARD_STRENGTH = 0.9
ALARM_STRENGTH = 0.5
"""A guard level without a baseline: half-way evidence."""
DEPLOY_CATEGORIES = frozenset({"out_of_memory", "crash_loop", "panic", "connection_pool", "db_timeout"})
"""Log categories that point at the service's own code/config (not at a dependency)."""
DEPENDENCY_CATEGORIES = frozenset({"upstream_5xx", "db_timeout", "connection_pool"})
"""Log categories of a failing dependency (when they were already there before the deploy)."""
DEPENDENCY_MIN_LINES_BEFORE = 3
"""Lines of a dependency-failure pattern before the deploy that show the dependency was already failing."""
LOW_TRAFFIC_WEIGHT = 0.5
"""A ratio on a low-traffic service counts half: it rests on a handful of requests."""
NON_RATIO_CORROBORATION = ("pod_restarts", "memory_utilization", "latency_p95_ms")
"""Regressions that corroborate a low-traffic error ratio (they do not rest on the request count)."""
METRIC_WEIGHT = 0.8
"""One metric, however clear, is at most this much evidence: agreement of several is worth more."""
OUTAGE_ERROR_RATE = 0.10
"""A pre-existing error rate at or above this is an outage: ESCALATE with HIGH severity."""
MIN_REAL_SAMPLES = 5
"""Real samples on each side of the deploy that the metrics that matter need (no evidence, no verdict)."""

CATEGORY_TEXT = {
    "out_of_memory": "out-of-memory errors",
    "db_timeout": "database timeouts",
    "connection_pool": "database connection pool exhaustion",
    "crash_loop": "a crash loop",
    "panic": "process panics",
    "upstream_5xx": "upstream 5xx responses",
}


@dataclass
class Facts:
    """What the rules read: the judgements sorted by status, the logs, and the window's context."""

    deployment: Deployment
    guards: list[str] = field(default_factory=list)
    regressions: list[MetricJudgement] = field(default_factory=list)
    preexisting: list[MetricJudgement] = field(default_factory=list)
    transient: list[MetricJudgement] = field(default_factory=list)
    improved: list[MetricJudgement] = field(default_factory=list)
    load: list[MetricJudgement] = field(default_factory=list)
    """Latency/cpu rises that follow a traffic rise."""
    ended: list[MetricJudgement] = field(default_factory=list)
    """Anomalies that began before the deploy and are over."""
    load_ratio: float | None = None
    alarms: list[str] = field(default_factory=list)
    """Guard levels reached by metrics that have no baseline (cannot be attributed on their own)."""
    new_errors: list[LogPattern] = field(default_factory=list)
    """New or surging ERROR-level patterns after the deploy."""
    old_errors: list[LogPattern] = field(default_factory=list)
    """ERROR-level patterns already there before the deploy (steady or gone)."""
    low_traffic: bool = False
    rps_after: float | None = None
    coverage: float = 0.0
    metric_coverage: float = 0.0
    strong: list[MetricJudgement] = field(default_factory=list)
    weak: list[MetricJudgement] = field(default_factory=list)
    """Ratio regressions on a low-traffic service."""
    categories: list[str] = field(default_factory=list)
    """Critical categories of the new error logs."""
    old_categories: list[str] = field(default_factory=list)
    own_failure: set[str] = field(default_factory=set)
    """New log signatures of the service itself failing (not of a dependency)."""
    missing: list[str] = field(default_factory=list)
    """What the metrics that matter lack (no evidence, no verdict)."""
    traffic: Traffic | None = None
    rollback_target: str | None = None
    rollback_blocked: str | None = None
    """Why no version is safe to roll back to (the previous one was judged bad, none known good)."""

    @property
    def user_facing(self) -> list[MetricJudgement]:
        return [j for j in self.strong if j.name in USER_FACING and j.result.basis != "trend"]

    @property
    def trends(self) -> list[MetricJudgement]:
        return [j for j in self.strong if j.result.basis == "trend"]

    @property
    def all_regressions(self) -> list[MetricJudgement]:
        return self.strong + self.weak

    @property
    def critical_log_lines(self) -> int:
        return sum(p.count_after for p in self.new_errors if p.category in CRITICAL_LOG_CATEGORIES)


# -- gathering -------------------------------------------------------------------------------------------


def attributable_to_deploy(p: LogPattern) -> bool:
    """A pattern the deploy plausibly caused: new, or surging from (nearly) nothing. A "surging"
    pattern that already had lines before the deploy began before it (an outage whose onset falls
    inside the baseline looks like a surge when counts are averaged over the whole baseline)."""
    if p.status == "new":
        return True
    return p.status == "surging" and p.count_before * PRE_EXISTING_LOG_RATIO <= p.count_after


def _log_strength(p: LogPattern) -> float:
    return 0.6 * (1.0 - math.exp(-p.count_after / 20.0))


def _combine(strengths: list[float]) -> float:
    rest = 1.0
    for s in strengths:
        rest *= 1.0 - max(0.0, min(s, 0.999))
    return 1.0 - rest


def _same_incident(judgements: list[MetricJudgement], f: Facts) -> None:
    """An incident that began before the deploy with a dependency's signature in the logs, and got
    worse after it, is still that incident, unless new logs show the service itself failing."""
    # a dependency already failing before the deploy, even if it fails much more after it
    before = [p for p in f.old_errors + f.new_errors if p.count_before >= DEPENDENCY_MIN_LINES_BEFORE]
    dependency = {p.category for p in before} & DEPENDENCY_CATEGORIES
    # a dependency failure that took off just before the deploy: the metrics cannot show the onset
    # before it yet, the logs can
    took_off = any(p.category in DEPENDENCY_CATEGORIES and p.status == "surging" for p in before)
    own = {p.category for p in f.new_errors if p.count_before == 0} & DEPLOY_CATEGORIES
    if not dependency or own:
        return
    for j in judgements:
        if j.status == "regression" and (j.onset_before or (took_off and j.name in USER_FACING)):
            j.status, j.worsened = "preexisting", True
            j.result.reason += (
                f"; the logs show {', '.join(CATEGORY_TEXT[c] for c in sorted(dependency))} since before "
                "the deploy: the same incident"
            )


def _sort_logs(patterns: list[LogPattern], f: Facts) -> None:
    for p in patterns:
        level = p.level.upper()
        if level not in ERROR_LEVELS and not (level in WARN_LEVELS and p.category in WARN_CATEGORIES):
            continue
        if attributable_to_deploy(p):
            f.new_errors.append(p)
        elif p.count_before > 0:
            f.old_errors.append(p)
    f.categories = [p.category for p in f.new_errors if p.category in CRITICAL_LOG_CATEGORIES]
    f.old_categories = [
        p.category
        for p in f.old_errors + f.new_errors
        if p.category and (p in f.old_errors or p.count_before >= DEPENDENCY_MIN_LINES_BEFORE)
    ]
    f.own_failure = set(f.categories) & DEPLOY_CATEGORIES


def _sort_judgements(judgements: list[MetricJudgement], f: Facts) -> None:
    for j in judgements:
        alarm = absolute_alarm(j, low_traffic=f.low_traffic)
        if alarm:
            f.alarms.append(alarm)
        guard = check_guard(j, low_traffic=f.low_traffic)
        if guard:
            j.result.guard = guard
            f.guards.append(guard)
            if j.status != "regression":  # a guard is a regression even when the rank test is too weak
                j.status = "regression"
                j.result.classification = Classification.HIGH
                j.result.reason = f"{guard}; {j.result.reason}"
                j.strength = max(j.strength, GUARD_STRENGTH)
        {
            "regression": f.regressions,
            "preexisting": f.preexisting,
            "transient": f.transient,
            "improved": f.improved,
            "load": f.load,
            "ended": f.ended,
        }.get(j.status, []).append(j)


def _missing(judgements: list[MetricJudgement], traffic: Traffic | None) -> list[str]:
    """What the metrics that matter lack: counts when the window has them, else points."""
    if traffic is not None and traffic.missing:
        return list(traffic.missing)
    judged = [j for j in judgements if j.name in USER_FACING and j.status != "nodata"]
    if judged or traffic is not None:
        return []
    present = [j for j in judgements if j.name in ("error_rate", "latency_p95_ms")]
    if not present:
        return ["no error-rate or latency series in the window"]
    return [
        f"{j.name}: {j.result.baseline_points} real samples before the deploy and {j.result.after_points} "
        f"after it (need {MIN_REAL_SAMPLES} each)"
        for j in present
    ]


def rollback_target(deployment: Deployment, history: History) -> tuple[str | None, str | None]:
    """(the version a rollback redeploys, why there is none): the revision history's known-good
    version when it has one; else the previous version, unless it is known-bad; never a known-bad
    version. (For a watched live service the plan then holds the target to the revision history:
    console/loop/steps.py ``plan_rollback_target``.)"""
    good = history.known_good_version
    if good and good != deployment.version and good not in history.bad_versions:
        return good, None
    previous = deployment.previous_version
    if previous and previous not in history.bad_versions:
        return previous, None
    if previous:
        return (
            None,
            f"the previous version {previous} was judged bad and no other known-good version is known",
        )
    return None, None


def gather(
    deployment: Deployment,
    judgements: list[MetricJudgement],
    patterns: list[LogPattern],
    rps_after: float | None,
    traffic: Traffic | None = None,
    history: History | None = None,
) -> Facts:
    f = Facts(deployment=deployment, rps_after=rps_after, traffic=traffic)
    f.low_traffic = rps_after is not None and rps_after < LOW_TRAFFIC_RPS
    rps = next((j for j in judgements if j.name == "requests_per_second"), None)
    if rps is not None and rps.baseline_level and rps.tail_level is not None:
        f.load_ratio = rps.tail_level / rps.baseline_level
    _sort_logs(patterns, f)
    _same_incident(judgements, f)
    _sort_judgements(judgements, f)
    after_points = max((j.after_points for j in judgements), default=0)
    f.coverage = min(1.0, after_points / FULL_WINDOW_POINTS)
    by_name = {j.name: j for j in judgements}
    core = [by_name.get(n) for n in ("error_rate", "latency_p95_ms")]
    f.metric_coverage = sum(1 for j in core if j is not None and j.status != "nodata") / len(core)
    f.strong = [j for j in f.regressions if not (f.low_traffic and j.name in RATIO_METRICS)]
    f.weak = [j for j in f.regressions if j not in f.strong]
    f.missing = _missing(judgements, traffic)
    f.rollback_target, f.rollback_blocked = rollback_target(deployment, history or History())
    return f


# -- the rules ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One row of the verdict table."""

    name: str
    verdict: Verdict
    applies: Callable[[Facts], bool]
    reason: Callable[[Facts], str]
    evidence: Callable[[Facts], list[float]]
    """Strengths this rule's verdict rests on (combined by :func:`confidence`)."""


def _names(js: list[MetricJudgement]) -> str:
    return ", ".join(j.name for j in js)


def _metric_strengths(f: Facts) -> list[float]:
    return [METRIC_WEIGHT * j.strength * (LOW_TRAFFIC_WEIGHT if j in f.weak else 1.0) for j in f.regressions]


def _log_strengths(f: Facts) -> list[float]:
    return [_log_strength(p) for p in f.new_errors if p.category in CRITICAL_LOG_CATEGORIES]


def _corroborated(f: Facts) -> bool:
    """A low-traffic ratio rise backed by new error logs or by a regression that does not rest on
    the request count."""
    return bool(f.weak) and (bool(f.own_failure) or any(j.name in NON_RATIO_CORROBORATION for j in f.strong))


def _rollback_evidence(f: Facts) -> list[float]:
    return (
        _metric_strengths(f)
        + [GUARD_STRENGTH] * len(f.guards)
        + [ALARM_STRENGTH] * len(f.alarms)
        + _log_strengths(f)
    )


def _escalate_evidence(f: Facts) -> list[float]:
    pre = [METRIC_WEIGHT * j.strength for j in f.preexisting]
    return _metric_strengths(f) + pre + [ALARM_STRENGTH] * len(f.alarms) + _log_strengths(f)


def _user_facing_reason(f: Facts) -> str:
    parts = []
    for j in f.user_facing:
        where = f" on {j.result.dimension}" if j.result.dimension else ""
        parts.append(j.name + where)
    return "user-facing regression after the deploy: " + ", ".join(parts)


def _trend_reason(f: Facts) -> str:
    return "a resource climbs to its limit: " + "; ".join(f"{j.name} {j.result.projection}" for j in f.trends)


def _insufficient_reason(f: Facts) -> str:
    extra = ("; " + "; ".join(f.alarms)) if f.alarms else ""
    return "insufficient evidence: " + "; ".join(f.missing) + extra


def _no_healthy_baseline(f: Facts) -> bool:
    t = f.traffic
    return t is not None and bool(t.unhealthy) and t.reference is None


def _no_healthy_baseline_reason(f: Facts) -> str:
    t = f.traffic
    assert t is not None
    return (
        "no healthy baseline: the window before the deploy is not one ("
        + "; ".join(t.unhealthy)
        + "), and there is no known-good version or stated objectives to compare with"
    )


def _healthy_reason(f: Facts) -> str:
    t = f.traffic
    if t is None:
        return "no regression attributable to the deploy"
    return (
        f"no regression attributable to the deploy ({t.scrapes_after} real scrapes and "
        f"{t.requests_after:.0f} requests since it, compared with {t.baseline})"
    )


def _capacity(f: Facts) -> bool:
    return any(
        j.name == "latency_p95_ms" and (j.tail_level or 0.0) >= LOAD_ESCALATE_RISE * (j.baseline_level or 0.0)
        for j in f.load
    )


ROLLBACK_RULES: tuple[Rule, ...] = (
    Rule(
        "hard-guard", Verdict.ROLLBACK, lambda f: bool(f.guards),
        lambda f: "hard guard(s) fired: " + "; ".join(f.guards), _rollback_evidence,
    ),
    Rule(
        "user-facing-regression", Verdict.ROLLBACK, lambda f: bool(f.user_facing),
        _user_facing_reason, _rollback_evidence,
    ),
    Rule(
        "resource-climbs-to-limit", Verdict.ROLLBACK, lambda f: bool(f.trends),
        _trend_reason, _rollback_evidence,
    ),
    Rule(
        "regression-with-error-logs", Verdict.ROLLBACK, lambda f: bool(f.strong and f.own_failure),
        lambda f: f"{_names(f.strong)} regressed and new error logs agree ({', '.join(sorted(f.own_failure))})",  # noqa: E501
        _rollback_evidence,
    ),
    Rule(
        "low-traffic-corroborated", Verdict.ROLLBACK,
        _corroborated,
        lambda f: f"{_names(f.weak)} rose on low traffic, corroborated by other evidence",
        _rollback_evidence,
    ),
    Rule(
        "no-baseline-levels-with-error-logs", Verdict.ROLLBACK, lambda f: bool(f.alarms and f.own_failure),
        lambda f: (
            "no baseline before the deploy, but " + "; ".join(f.alarms) + " and new error logs after it ("
            + ", ".join(sorted(f.own_failure)) + ") point at the deploy"
        ),
        _rollback_evidence,
    ),
)  # fmt: skip


def _rollback_applies(f: Facts) -> bool:
    return any(rule.applies(f) for rule in ROLLBACK_RULES)


RULES: tuple[Rule, ...] = (
    Rule(
        "no-safe-rollback-target", Verdict.ESCALATE,
        lambda f: bool(f.rollback_blocked) and _rollback_applies(f),
        lambda f: (
            next(r for r in ROLLBACK_RULES if r.applies(f)).reason(f)
            + f"; but no version is safe to roll back to: {f.rollback_blocked}"
        ),
        _rollback_evidence,
    ),
    *ROLLBACK_RULES,
    Rule(
        "insufficient-evidence", Verdict.ESCALATE, lambda f: bool(f.missing), _insufficient_reason,
        lambda f: [],
    ),
    Rule(
        "no-healthy-baseline", Verdict.ESCALATE, _no_healthy_baseline, _no_healthy_baseline_reason,
        lambda f: [],
    ),
    Rule(
        "regression-needs-a-human", Verdict.ESCALATE, lambda f: bool(f.all_regressions),
        lambda f: f"regression needs a human look: {_names(f.all_regressions)}", _escalate_evidence,
    ),
    Rule(
        "no-baseline-levels", Verdict.ESCALATE, lambda f: bool(f.alarms),
        lambda f: "no baseline to attribute it, but " + "; ".join(f.alarms), _escalate_evidence,
    ),
    Rule(
        "degradation-before-the-deploy", Verdict.ESCALATE,
        lambda f: any(j.name in USER_FACING for j in f.preexisting),
        lambda f: f"degradation that began before the deploy is ongoing: {_names(f.preexisting)}",
        _escalate_evidence,
    ),
    Rule(
        "latency-follows-traffic", Verdict.ESCALATE, _capacity,
        lambda f: "latency rose with traffic: capacity, not the deploy", _escalate_evidence,
    ),
    Rule(
        "new-error-logs", Verdict.ESCALATE,
        lambda f: bool(f.new_errors) and f.critical_log_lines >= LOG_ONLY_ESCALATE_COUNT,
        lambda f: f"new error log patterns after the deploy ({', '.join(sorted(set(f.categories)))})",
        _escalate_evidence,
    ),
    Rule("healthy", Verdict.CONTINUE, lambda f: True, _healthy_reason, lambda f: []),
)  # fmt: skip
"""The verdict table, in order: the first rule that applies decides."""


def first_rule(f: Facts) -> Rule:
    return next(rule for rule in RULES if rule.applies(f))


def confidence(verdict: Verdict, f: Facts, evidence: list[float]) -> float:
    """The decision's confidence (see the module docstring): the one place it is computed."""
    combined = _combine(evidence)
    if verdict is Verdict.ROLLBACK:
        value = 0.5 + 0.49 * combined * f.coverage
    elif verdict is Verdict.ESCALATE:
        value = 0.4 + 0.45 * combined * f.coverage
    else:
        near_miss = max([j.strength for j in f.transient + f.preexisting] + [0.0])
        volume = 0.8 if f.low_traffic else 1.0
        value = (0.5 + 0.45 * f.coverage * f.metric_coverage) * (1 - 0.5 * near_miss) * volume
    return round(max(0.0, min(value, 0.99)), 4)


def apply_rules(
    deployment: Deployment,
    judgements: list[MetricJudgement],
    patterns: list[LogPattern],
    rps_after: float | None,
    notes: list[str] | None = None,
    *,
    traffic: Traffic | None = None,
    history: History | None = None,
) -> Decision:
    f = gather(deployment, judgements, patterns, rps_after, traffic, history)
    notes = list(notes or [])
    if f.weak:
        notes.append(
            f"low traffic ({f.rps_after:.2f} req/s after the deploy): the {_names(f.weak)} rise rests on few "
            "requests and cannot roll back on its own"
        )
    rule = first_rule(f)
    verdict = rule.verdict
    score = confidence(verdict, f, rule.evidence(f))
    reasoning = "; ".join(
        [rule.reason(f)] + [j.name + ": " + j.result.reason for j in judgements if j.status != "pass"]
    )
    return Decision(
        verdict=verdict,
        severity=_severity(verdict, f),
        confidence=score,
        summary=_summary(verdict, f, score, judgements),
        root_cause=_root_cause(verdict, f),
        actions=_actions(verdict, f),
        metrics=[j.result for j in judgements],
        log_patterns=list(patterns),
        analyzer="rules",
        rules_verdict=verdict,
        guards=list(f.guards),
        notes=notes,
        impact=_impact(f),
        reasoning=reasoning,
        rule=rule.name,
    )


# -- what the decision says ------------------------------------------------------------------------------


def _level_of(f: Facts, name: str) -> float | None:
    for j in f.regressions + f.preexisting:
        if j.name == name:
            return j.tail_level
    return None


def _severity(verdict: Verdict, f: Facts) -> Severity:
    if verdict is Verdict.ROLLBACK:
        crash = any(g.startswith("pod_restarts") for g in f.guards) or "crash_loop" in f.categories
        err_guard = any(g.startswith("error_rate") for g in f.guards + f.alarms)
        if len(f.guards) >= 2 or err_guard or crash:
            return Severity.CRITICAL
        return Severity.HIGH
    if verdict is Verdict.ESCALATE:
        err = _level_of(f, "error_rate")
        if (err is not None and err >= OUTAGE_ERROR_RATE and not f.low_traffic) or any(
            a.startswith("error_rate") for a in f.alarms
        ):
            return Severity.HIGH
        return Severity.MEDIUM
    return Severity.LOW


def _continue_cause(f: Facts, v: str) -> str:
    if f.transient:
        return (
            f"No regression from {v}: the short rise in {_names(f.transient)} "
            "right after the deploy recovered."
        )
    if f.improved:
        return f"No regression from {v}; it improved {_names(f.improved)}."
    return f"No regression attributable to {v}."


def _preexisting_cause(f: Facts, v: str) -> str:
    onset = min((j.onset_offset_s or 0.0) for j in f.preexisting)
    what = "a failing upstream dependency" if "upstream_5xx" in f.old_categories else "an external cause"
    if {"db_timeout", "connection_pool"} & set(f.old_categories):
        what = "a failing database"
    course = (
        "and kept worsening on its own course after it"
        if any(j.worsened for j in f.preexisting)
        else "and has not worsened since"
    )
    return f"Degradation began {ago_text(onset)} before {v} was deployed {course}: {what}, not the deploy."


def _failure_cause(f: Facts, v: str) -> str:
    cats = set(f.categories)
    names = {j.name for j in f.all_regressions}
    if (
        "out_of_memory" in cats
        or any(g.startswith("memory") for g in f.guards)
        or any(j.name == "memory_utilization" for j in f.trends)
    ):
        return (
            f"Memory leak introduced by {v}: memory climbs toward its limit "
            "and the service runs out of memory."
        )
    if "crash_loop" in cats or "panic" in cats or any(g.startswith("pod_restarts") for g in f.guards):
        return f"{v} crashes repeatedly (crash loop): pods restart after the deploy."
    if "connection_pool" in cats or "db_timeout" in cats:
        return (
            f"{v} exhausts the database connection pool / times out on database queries "
            "(the database was healthy before the deploy)."
        )
    if "upstream_5xx" in cats:
        return f"Calls from {v} to an upstream service fail with 5xx responses since the deploy."
    return _metric_cause(f, v, names, cats)


def _metric_cause(f: Facts, v: str, names: set[str], cats: set[str]) -> str:
    where = [j.result.dimension for j in f.all_regressions if j.result.dimension]
    on = f" (on {', '.join(sorted(set(where)))})" if where else ""
    if "latency_p95_ms" in names and "error_rate" not in names:
        return f"Latency regression introduced by {v}{on}."
    if "error_rate" in names:
        return f"Error-rate regression introduced by {v}{on}."
    if "failed_scrapes" in names:
        return f"{v} stopped answering its scrapes after the deploy (down or restarting)."
    if names:
        return (
            f"{_names(f.all_regressions)} changed after {v} was deployed; cause not identified from the logs."
        )
    if cats:
        return f"New error logs after {v}: {', '.join(CATEGORY_TEXT.get(c, c) for c in sorted(cats))}."
    if f.missing:
        return "Undetermined: not enough evidence (" + "; ".join(f.missing) + ")."
    return "Undetermined."


def _root_cause(verdict: Verdict, f: Facts) -> str:
    v = f.deployment.version
    if verdict is Verdict.CONTINUE:
        return _continue_cause(f, v)
    if f.preexisting and not f.all_regressions and not f.guards:
        return _preexisting_cause(f, v)
    return _failure_cause(f, v)


def _action(name: str, reason: str, **params) -> RecommendedAction:
    spec = get_action(name)
    return RecommendedAction(name=spec.name, risk=spec.risk, reason=reason, params=dict(params))


def _actions(verdict: Verdict, f: Facts) -> list[RecommendedAction]:
    dep = f.deployment
    if verdict is Verdict.ROLLBACK:
        target = f.rollback_target or "the previous version"
        reason = f"Regression attributed to {dep.version}: redeploy {target}."
        if f.rollback_target and f.rollback_target != dep.previous_version:
            reason += f" ({dep.previous_version} was judged bad: the last known-good version instead.)"
        if "out_of_memory" in f.categories or any(g.startswith("memory") for g in f.guards) or f.trends:
            # Every planned action runs once approved, so an alternative to the rollback is advice in
            # the text, not a second action (raising the limit would only hide the leak).
            reason += " If the rollback is blocked, increase_resources buys time; the leak remains."
        return [
            _action(ROLLBACK, reason, service=dep.service, to_version=f.rollback_target),
            _action("collect_diagnostics", "Keep heap/thread dumps and logs of the bad version for the fix."),
        ]
    if verdict is Verdict.ESCALATE:
        return _escalate_actions(f)
    return [_action("notify_only", "Deployment healthy: tell the channel, change nothing.")]


def _escalate_actions(f: Facts) -> list[RecommendedAction]:
    notify = "A human should look: the evidence does not justify an automatic rollback."
    if f.missing:
        notify = (
            "A human should look: not enough evidence to judge the deploy (" + "; ".join(f.missing) + ")."
        )
    actions = [
        _action("collect_diagnostics", "Gather logs, events and dumps for the on-call engineer."),
        _action("notify_only", notify),
    ]
    if f.load and not f.regressions:
        actions.insert(
            0,
            _action(
                "scale_deployment",
                "Latency follows a traffic rise: add replicas.",
                service=f.deployment.service,
            ),
        )
    db_failing = {"db_timeout", "connection_pool"} & set(f.old_categories) and any(
        j.name in USER_FACING for j in f.preexisting
    )
    if db_failing:
        actions.append(
            _action(
                "failover_database",
                "The database itself has been failing since before the deploy; fail over only if the "
                "primary is confirmed unhealthy.",
            )
        )
    return actions


def _describe(j: MetricJudgement) -> str:
    if j.name == "pod_restarts":
        baseline = format_value(j.name, j.baseline_mean)
        return f"pod_restarts {j.after_sum:.0f} since the deploy (baseline {baseline})"
    if j.result.dimension:
        share = f", {j.result.share:.0%} of the requests" if j.result.share is not None else ""
        return (
            f"{j.name} on {j.result.dimension}{share} {format_value(j.name, j.result.baseline_median)} → "
            f"{format_value(j.name, j.result.after_median)}"
        )
    before = j.pre_level if j.status == "preexisting" and j.pre_level is not None else j.baseline_level
    text = f"{j.name} {format_value(j.name, before)} → {format_value(j.name, j.tail_level)}"
    return f"{text}, {j.result.projection}" if j.result.projection else text


def _impact(f: Facts) -> str:
    parts = [_describe(j) for j in f.regressions + f.preexisting]
    if not parts:
        return "No impact attributable to the deploy measured."
    return "; ".join(parts) + "."


def _rollback_summary(f: Facts, head: str) -> list[str]:
    regressions = f.all_regressions
    parts = [
        f"{head} regressed after the deploy: " + "; ".join(_describe(j) for j in regressions) + "."
        if regressions
        else f"{head} is failing after the deploy."
    ]
    if f.guards:
        parts.append("Hard guards: " + "; ".join(f.guards) + ".")
    if f.alarms:
        parts.append("No baseline before the deploy; absolute levels: " + "; ".join(f.alarms) + ".")
    return parts


def _escalate_summary(f: Facts, head: str) -> list[str]:
    regressions = f.all_regressions
    parts = []
    if f.missing:
        parts.append(f"{head}: not enough evidence to judge it: " + "; ".join(f.missing) + ".")
    if _no_healthy_baseline(f):
        parts.append(_no_healthy_baseline_reason(f)[0].upper() + _no_healthy_baseline_reason(f)[1:] + ".")
    if f.rollback_blocked:
        parts.append(f"A rollback is called for, but {f.rollback_blocked}.")
    if regressions:
        parts.append(
            f"{head} shows a change that needs a human: " + "; ".join(_describe(j) for j in regressions) + "."
        )
    if f.preexisting:
        worse = [j for j in f.preexisting if j.worsened]
        parts.append(
            "Already degraded before the deploy and still ongoing: "
            + "; ".join(_describe(j) for j in f.preexisting)
            + (
                f"; {_names(worse)} got worse after the deploy, on the course of the same incident "
                "(see the reasons per metric)."
                if worse
                else "; the deploy did not make it worse."
            )
        )
    if f.load and not regressions:
        parts.append(
            f"{head}: "
            + "; ".join(_describe(j) for j in f.load)
            + " rose with traffic"
            + (f" (requests/s x{f.load_ratio:.2f})" if f.load_ratio else "")
            + ": a capacity question, not a regression of the deploy."
        )
    if f.alarms:
        parts.append("No baseline before the deploy; absolute levels: " + "; ".join(f.alarms) + ".")
    if not parts:
        parts.append(f"{head}: metrics look normal but new error logs appeared.")
    return parts


def _continue_summary(f: Facts, head: str, judgements: list[MetricJudgement]) -> list[str]:
    mentioned = {j.name for j in f.all_regressions + f.preexisting + f.improved + f.load}
    key = [
        j
        for j in judgements
        if j.name in KEY_METRICS and j.name not in mentioned and j.status in ("pass", "transient", "ended")
    ]
    parts = [f"{head} looks healthy: no metric regressed persistently after the deploy."]
    if key:
        parts.append("Before → after the deploy: " + ", ".join(_describe(j) for j in key) + ".")
    if f.transient:
        parts.append("Recovered blip: " + "; ".join(f"{j.name} {j.result.reason}" for j in f.transient) + ".")
    if f.ended:
        parts.append(f"An anomaly that began before the deploy is over ({_names(f.ended)} back to normal).")
    if f.load:
        parts.append(f"{_names(f.load)} follow(s) a traffic rise, not the deploy.")
    if f.improved:
        parts.append("Improved: " + ", ".join(_describe(j) for j in f.improved) + ".")
    steady = [p for p in f.old_errors if not p.category and p.status == "steady"]
    if steady:
        top = max(steady, key=lambda p: p.count_before + p.count_after)
        parts.append(
            f"{len(steady)} error log pattern(s) were already there before the deploy and continue "
            f"unchanged (e.g. {top.template[:80]!r}: "
            f"{top.count_before} lines before, {top.count_after} after)."
        )
    return parts


def _log_summary(f: Facts) -> list[str]:
    parts = []
    if f.categories:
        counts: dict[str, int] = {}
        for p in f.new_errors:
            if p.category:
                counts[p.category] = counts.get(p.category, 0) + p.count_after
        parts.append(
            "New error logs since the deploy: "
            + ", ".join(f"{CATEGORY_TEXT.get(c, c)} ({n} lines)" for c, n in sorted(counts.items()))
            + "."
        )
    old: dict[str, tuple[int, int]] = {}
    for p in f.old_errors:
        if p.category:
            before, after = old.get(p.category, (0, 0))
            old[p.category] = (before + p.count_before, after + p.count_after)
    if old:
        parts.append(
            "Error logs already present before the deploy: "
            + ", ".join(
                f"{CATEGORY_TEXT.get(c, c)} ({b} lines before, {a} after)"
                for c, (b, a) in sorted(old.items())
            )
            + "."
        )
    return parts


def _baseline_sentence(f: Facts) -> list[str]:
    t = f.traffic
    if t is None or not t.unhealthy or t.reference is None:
        return []
    return [
        f"Baseline: {t.baseline} (the window before the deploy was not healthy: {'; '.join(t.unhealthy)})."
    ]


def _summary(verdict: Verdict, f: Facts, score: float, judgements: list[MetricJudgement]) -> str:
    head = f"{f.deployment.service} {f.deployment.version}"
    if verdict is Verdict.ROLLBACK:
        parts = _rollback_summary(f, head)
    elif verdict is Verdict.ESCALATE:
        parts = _escalate_summary(f, head)
    else:
        parts = _continue_summary(f, head, judgements)
    parts += _baseline_sentence(f) + _log_summary(f)
    if f.low_traffic and f.rps_after is not None:
        parts.append(f"Traffic is low ({f.rps_after:.2f} req/s), so error ratios are noisy.")
    parts.append(f"Verdict {verdict.value} with confidence {score:.0%}.")
    return " ".join(parts)
