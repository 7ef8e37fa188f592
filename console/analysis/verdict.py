"""From per-metric judgements and log patterns to a :class:`Decision`.

Verdict rules, strictest first:

1. **ROLLBACK** when a hard guard fires (see ``metrics.check_guard``), or when a metric that users
   feel (``error_rate``, ``latency_p95_ms``, ``pod_restarts``) regressed after the deploy and
   persisted, or when any attributable regression is corroborated by new/surging ERROR log patterns
   with a known root-cause category. On a low-traffic service an ``error_rate`` rise alone is a
   ratio of a handful of requests: it never rolls back on its own.
2. **ESCALATE** when something needs a human but is not the deploy's fault or not proven to be: a
   degradation whose onset is before the deploy and which is still going on (dependency outage), a
   regression of a resource metric only (cpu, memory below its guard, an unknown metric, a
   throughput drop), a low-traffic error-ratio rise, or new ERROR patterns in a critical category
   while the metrics look fine.
3. **CONTINUE** otherwise (including improvements, recovered blips, unchanged pre-existing errors).

Confidence (documented formula, never random). Each piece of evidence *i* has a strength
``e_i`` in [0, 1): a metric's ``0.8 x |Cliff's delta| x (1 - exp(-excess))`` where ``excess`` is the
shift in units of its tolerance (so one metric alone is never more than 0.8; half that for an error
ratio on a low-traffic service); a fired guard 0.9;
a corroborating log pattern ``0.6 x (1 - exp(-n/20))`` for ``n`` lines after the deploy.
``E = 1 - prod(1 - e_i)`` combines agreeing evidence. ``coverage`` = ``min(1, verification points / 30)``
is how much of a full verification window was seen.

* ROLLBACK: ``0.5 + 0.49 x E x coverage``,
* ESCALATE: ``0.4 + 0.45 x E x coverage``,
* CONTINUE: ``(0.5 + 0.45 x coverage x metric_coverage) x (1 - 0.5 x N) x volume``, where
  ``metric_coverage`` is the share of error_rate/latency_p95_ms present with data, ``N`` the strongest
  near miss (transient or pre-existing evidence) and ``volume`` 0.8 on a low-traffic service, else 1.

So a stronger regression, more metrics agreeing, logs agreeing, and a longer window all raise it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from console.analysis.metrics import (
    LOW_TRAFFIC_RPS,
    MetricJudgement,
    absolute_alarm,
    ago_text,
    check_guard,
    format_value,
)
from console.domain.actions import ROLLBACK, get_action
from console.domain.models import (
    Classification,
    Decision,
    Deployment,
    LogPattern,
    RecommendedAction,
    Severity,
    Verdict,
)

USER_FACING = ("error_rate", "latency_p95_ms", "pod_restarts")
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

CATEGORY_TEXT = {
    "out_of_memory": "out-of-memory errors",
    "db_timeout": "database timeouts",
    "connection_pool": "database connection pool exhaustion",
    "crash_loop": "a crash loop",
    "panic": "process panics",
    "upstream_5xx": "upstream 5xx responses",
}


@dataclass
class Evidence:
    guards: list[str] = field(default_factory=list)
    regressions: list[MetricJudgement] = field(default_factory=list)
    preexisting: list[MetricJudgement] = field(default_factory=list)
    transient: list[MetricJudgement] = field(default_factory=list)
    improved: list[MetricJudgement] = field(default_factory=list)
    load: list[MetricJudgement] = field(default_factory=list)
    ended: list[MetricJudgement] = field(default_factory=list)
    """Anomalies that began before the deploy and are over."""
    load_ratio: float | None = None
    alarms: list[str] = field(default_factory=list)
    """Guard levels reached by metrics that have no baseline (cannot be attributed on their own)."""
    """Latency/cpu rises that follow a traffic rise."""
    new_errors: list[LogPattern] = field(default_factory=list)
    """New or surging ERROR-level patterns after the deploy."""
    old_errors: list[LogPattern] = field(default_factory=list)
    """ERROR-level patterns already there before the deploy (steady or gone)."""
    low_traffic: bool = False
    rps_after: float | None = None
    coverage: float = 0.0
    metric_coverage: float = 0.0


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


def _same_incident(judgements: list[MetricJudgement], ev: Evidence) -> None:
    """An incident that began before the deploy with a dependency's signature in the logs, and got
    worse after it, is still that incident, unless new logs show the service itself failing."""
    # a dependency already failing before the deploy, even if it fails much more after it
    before = [p for p in ev.old_errors + ev.new_errors if p.count_before >= DEPENDENCY_MIN_LINES_BEFORE]
    dependency = {p.category for p in before} & DEPENDENCY_CATEGORIES
    # a dependency failure that took off just before the deploy: the metrics cannot show the onset
    # before it yet, the logs can
    took_off = any(p.category in DEPENDENCY_CATEGORIES and p.status == "surging" for p in before)
    own = {p.category for p in ev.new_errors if p.count_before == 0} & DEPLOY_CATEGORIES
    if not dependency or own:
        return
    for j in judgements:
        if j.status == "regression" and (j.onset_before or (took_off and j.name in USER_FACING)):
            j.status, j.worsened = "preexisting", True
            j.result.reason += (
                f"; the logs show {', '.join(CATEGORY_TEXT[c] for c in sorted(dependency))} since before "
                "the deploy: the same incident"
            )


def gather(
    judgements: list[MetricJudgement], patterns: list[LogPattern], rps_after: float | None
) -> Evidence:
    ev = Evidence(rps_after=rps_after)
    ev.low_traffic = rps_after is not None and rps_after < LOW_TRAFFIC_RPS
    rps = next((j for j in judgements if j.name == "requests_per_second"), None)
    if rps is not None and rps.baseline_level and rps.tail_level is not None:
        ev.load_ratio = rps.tail_level / rps.baseline_level
    for p in patterns:
        level = p.level.upper()
        if level not in ERROR_LEVELS and not (level in WARN_LEVELS and p.category in WARN_CATEGORIES):
            continue
        if attributable_to_deploy(p):
            ev.new_errors.append(p)
        elif p.count_before > 0:
            ev.old_errors.append(p)
    _same_incident(judgements, ev)
    for j in judgements:
        alarm = absolute_alarm(j, low_traffic=ev.low_traffic)
        if alarm:
            ev.alarms.append(alarm)
        guard = check_guard(j, low_traffic=ev.low_traffic)
        if guard:
            j.result.guard = guard
            ev.guards.append(guard)
            if j.status != "regression":  # a guard is a regression even when the rank test is too weak
                j.status = "regression"
                j.result.classification = Classification.HIGH
                j.result.reason = f"{guard}; {j.result.reason}"
                j.strength = max(j.strength, GUARD_STRENGTH)
        {
            "regression": ev.regressions,
            "preexisting": ev.preexisting,
            "transient": ev.transient,
            "improved": ev.improved,
            "load": ev.load,
            "ended": ev.ended,
        }.get(j.status, []).append(j)
    after_points = max((j.after_points for j in judgements), default=0)
    ev.coverage = min(1.0, after_points / FULL_WINDOW_POINTS)
    by_name = {j.name: j for j in judgements}
    core = [by_name.get(n) for n in ("error_rate", "latency_p95_ms")]
    ev.metric_coverage = sum(1 for j in core if j is not None and j.status != "nodata") / len(core)
    return ev


def _action(name: str, reason: str, **params) -> RecommendedAction:
    spec = get_action(name)
    return RecommendedAction(name=spec.name, risk=spec.risk, reason=reason, params=dict(params))


def _names(js: list[MetricJudgement]) -> str:
    return ", ".join(j.name for j in js)


def _describe(j: MetricJudgement) -> str:
    if j.name == "pod_restarts":
        return f"pod_restarts {j.after_sum:.0f} since the deploy (baseline {j.baseline_mean:.2f}/interval)"
    before = j.pre_level if j.status == "preexisting" and j.pre_level is not None else j.baseline_level
    return f"{j.name} {format_value(j.name, before)} → {format_value(j.name, j.tail_level)}"


def decide(
    deployment: Deployment,
    judgements: list[MetricJudgement],
    patterns: list[LogPattern],
    rps_after: float | None,
    notes: list[str] | None = None,
) -> Decision:
    ev = gather(judgements, patterns, rps_after)
    notes = list(notes or [])
    categories = [p.category for p in ev.new_errors if p.category in CRITICAL_LOG_CATEGORIES]
    old_categories = [
        p.category
        for p in ev.old_errors + ev.new_errors
        if p.category and (p in ev.old_errors or p.count_before >= DEPENDENCY_MIN_LINES_BEFORE)
    ]

    own_failure = set(categories) & DEPLOY_CATEGORIES
    """New log signatures of the service itself failing (not of a dependency)."""
    strong = [j for j in ev.regressions if not (ev.low_traffic and j.name in RATIO_METRICS)]
    weak = [j for j in ev.regressions if j not in strong]
    user_facing = [j for j in strong if j.name in USER_FACING]
    if weak:
        notes.append(
            f"low traffic ({ev.rps_after:.2f} req/s after the deploy): the {_names(weak)} rise rests on few "
            "requests and cannot roll back on its own"
        )

    reasons: list[str] = []
    if ev.guards:
        verdict = Verdict.ROLLBACK
        reasons.append("hard guard(s) fired: " + "; ".join(ev.guards))
    elif user_facing:
        verdict = Verdict.ROLLBACK
        reasons.append(f"user-facing regression after the deploy: {_names(user_facing)}")
    elif strong and own_failure:
        verdict = Verdict.ROLLBACK
        reasons.append(
            f"{_names(strong)} regressed and new error logs agree ({', '.join(sorted(own_failure))})"
        )
    elif weak and (own_failure or any(j.name in NON_RATIO_CORROBORATION for j in strong)):
        verdict = Verdict.ROLLBACK
        reasons.append(f"{_names(weak)} rose on low traffic, corroborated by other evidence")
    elif ev.alarms and own_failure:
        verdict = Verdict.ROLLBACK
        reasons.append(
            "no baseline before the deploy, but "
            + "; ".join(ev.alarms)
            + " and new error logs after it ("
            + ", ".join(sorted(own_failure))
            + ") point at the deploy"
        )
    elif strong or weak:
        verdict = Verdict.ESCALATE
        reasons.append(f"regression needs a human look: {_names(strong + weak)}")
    elif ev.alarms:
        verdict = Verdict.ESCALATE
        reasons.append("no baseline to attribute it, but " + "; ".join(ev.alarms))
    elif ev.preexisting and any(j.name in USER_FACING for j in ev.preexisting):
        verdict = Verdict.ESCALATE
        reasons.append(f"degradation that began before the deploy is ongoing: {_names(ev.preexisting)}")
    elif any(
        j.name == "latency_p95_ms" and (j.tail_level or 0.0) >= LOAD_ESCALATE_RISE * (j.baseline_level or 0.0)
        for j in ev.load
    ):
        verdict = Verdict.ESCALATE
        reasons.append("latency rose with traffic: capacity, not the deploy")
    elif (
        any(ev.new_errors)
        and sum(p.count_after for p in ev.new_errors if p.category in CRITICAL_LOG_CATEGORIES)
        >= LOG_ONLY_ESCALATE_COUNT
    ):
        verdict = Verdict.ESCALATE
        reasons.append(f"new error log patterns after the deploy ({', '.join(sorted(set(categories)))})")
    else:
        verdict = Verdict.CONTINUE
        reasons.append("no regression attributable to the deploy")

    # confidence
    metric_strengths = [
        METRIC_WEIGHT * j.strength * (LOW_TRAFFIC_WEIGHT if j in weak else 1.0) for j in ev.regressions
    ]
    log_strengths = [_log_strength(p) for p in ev.new_errors if p.category in CRITICAL_LOG_CATEGORIES]
    if verdict is Verdict.ROLLBACK:
        evidence = _combine(
            metric_strengths
            + [GUARD_STRENGTH] * len(ev.guards)
            + [ALARM_STRENGTH] * len(ev.alarms)
            + log_strengths
        )
        confidence = 0.5 + 0.49 * evidence * ev.coverage
    elif verdict is Verdict.ESCALATE:
        pre = [METRIC_WEIGHT * j.strength for j in ev.preexisting]
        evidence = _combine(metric_strengths + pre + [ALARM_STRENGTH] * len(ev.alarms) + log_strengths)
        confidence = 0.4 + 0.45 * evidence * ev.coverage
    else:
        near_miss = max([j.strength for j in ev.transient + ev.preexisting] + [0.0])
        volume = 0.8 if ev.low_traffic else 1.0
        confidence = (0.5 + 0.45 * ev.coverage * ev.metric_coverage) * (1 - 0.5 * near_miss) * volume
    confidence = round(max(0.0, min(confidence, 0.99)), 4)

    severity = _severity(verdict, ev, categories)
    root_cause = _root_cause(verdict, deployment, ev, categories, old_categories, strong + weak)
    actions = _actions(verdict, ev, categories, old_categories, deployment)
    summary = _summary(verdict, deployment, ev, strong + weak, categories, confidence, judgements)
    reasoning = "; ".join(
        reasons + [j.name + ": " + j.result.reason for j in judgements if j.status != "pass"]
    )
    impact = _impact(ev)
    return Decision(
        verdict=verdict,
        severity=severity,
        confidence=confidence,
        summary=summary,
        root_cause=root_cause,
        actions=actions,
        metrics=[j.result for j in judgements],
        log_patterns=list(patterns),
        analyzer="rules",
        rules_verdict=verdict,
        guards=list(ev.guards),
        notes=notes,
        impact=impact,
        reasoning=reasoning,
    )


def _level_of(ev: Evidence, name: str) -> float | None:
    for j in ev.regressions + ev.preexisting:
        if j.name == name:
            return j.tail_level
    return None


def _severity(verdict: Verdict, ev: Evidence, categories: list[str]) -> Severity:
    if verdict is Verdict.ROLLBACK:
        crash = any(g.startswith("pod_restarts") for g in ev.guards) or "crash_loop" in categories
        err_guard = any(g.startswith("error_rate") for g in ev.guards + ev.alarms)
        if len(ev.guards) >= 2 or err_guard or crash:
            return Severity.CRITICAL
        return Severity.HIGH
    if verdict is Verdict.ESCALATE:
        err = _level_of(ev, "error_rate")
        if (err is not None and err >= OUTAGE_ERROR_RATE and not ev.low_traffic) or any(
            a.startswith("error_rate") for a in ev.alarms
        ):
            return Severity.HIGH
        return Severity.MEDIUM
    return Severity.LOW


def _root_cause(
    verdict: Verdict,
    dep: Deployment,
    ev: Evidence,
    categories: list[str],
    old_categories: list[str],
    regressions: list[MetricJudgement],
) -> str:
    cats = set(categories)
    names = {j.name for j in regressions}
    v = dep.version
    if verdict is Verdict.CONTINUE:
        if ev.transient:
            return (
                f"No regression from {v}: the short rise in {_names(ev.transient)} "
                "right after the deploy recovered."
            )
        if ev.improved:
            return f"No regression from {v}; it improved {_names(ev.improved)}."
        return f"No regression attributable to {v}."
    if ev.preexisting and not regressions and not ev.guards:
        onset = min((j.onset_offset_s or 0.0) for j in ev.preexisting)
        what = "a failing upstream dependency" if "upstream_5xx" in old_categories else "an external cause"
        if {"db_timeout", "connection_pool"} & set(old_categories):
            what = "a failing database"
        course = (
            "and kept worsening on its own course after it"
            if any(j.worsened for j in ev.preexisting)
            else "and has not worsened since"
        )
        began = f"Degradation began {ago_text(onset)} before {v} was deployed"
        return f"{began} {course}: {what}, not the deploy."
    if "out_of_memory" in cats or any(g.startswith("memory") for g in ev.guards):
        return (
            f"Memory leak introduced by {v}: memory climbs toward its limit "
            "and the service runs out of memory."
        )
    if "crash_loop" in cats or "panic" in cats or any(g.startswith("pod_restarts") for g in ev.guards):
        return f"{v} crashes repeatedly (crash loop): pods restart after the deploy."
    if "connection_pool" in cats or "db_timeout" in cats:
        return (
            f"{v} exhausts the database connection pool / times out on database queries "
            "(the database was healthy before the deploy)."
        )
    if "upstream_5xx" in cats:
        return f"Calls from {v} to an upstream service fail with 5xx responses since the deploy."
    if "latency_p95_ms" in names and "error_rate" not in names:
        return f"Latency regression introduced by {v}."
    if "error_rate" in names:
        return f"Error-rate regression introduced by {v}."
    if names:
        return f"{_names(regressions)} changed after {v} was deployed; cause not identified from the logs."
    if cats:
        return f"New error logs after {v}: {', '.join(CATEGORY_TEXT.get(c, c) for c in sorted(cats))}."
    return "Undetermined."


def _actions(
    verdict: Verdict, ev: Evidence, categories: list[str], old_categories: list[str], dep: Deployment
) -> list[RecommendedAction]:
    cats = set(categories)
    if verdict is Verdict.ROLLBACK:
        prev = dep.previous_version or "the previous version"
        reason = f"Regression attributed to {dep.version}: redeploy {prev}."
        if "out_of_memory" in cats or any(g.startswith("memory") for g in ev.guards):
            # Every planned action runs once approved, so an alternative to the rollback is advice in
            # the text, not a second action (raising the limit would only hide the leak).
            reason += " If the rollback is blocked, increase_resources buys time; the leak remains."
        return [
            _action(ROLLBACK, reason, service=dep.service, to_version=dep.previous_version),
            _action("collect_diagnostics", "Keep heap/thread dumps and logs of the bad version for the fix."),
        ]
    if verdict is Verdict.ESCALATE:
        actions = [
            _action("collect_diagnostics", "Gather logs, events and dumps for the on-call engineer."),
            _action(
                "notify_only", "A human should look: the evidence does not justify an automatic rollback."
            ),
        ]
        if ev.load and not ev.regressions:
            actions.insert(
                0,
                _action(
                    "scale_deployment", "Latency follows a traffic rise: add replicas.", service=dep.service
                ),
            )
        db_failing = {"db_timeout", "connection_pool"} & set(old_categories) and any(
            j.name in USER_FACING for j in ev.preexisting
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
    return [_action("notify_only", "Deployment healthy: tell the channel, change nothing.")]


def _impact(ev: Evidence) -> str:
    parts = [_describe(j) for j in ev.regressions + ev.preexisting]
    if not parts:
        return "No impact attributable to the deploy measured."
    return "; ".join(parts) + "."


def _summary(
    verdict: Verdict,
    dep: Deployment,
    ev: Evidence,
    regressions: list[MetricJudgement],
    categories: list[str],
    confidence: float,
    judgements: list[MetricJudgement] | None = None,
) -> str:
    head = f"{dep.service} {dep.version}"
    parts: list[str] = []
    mentioned = {j.name for j in regressions + ev.preexisting + ev.improved + ev.load}
    key = [
        j
        for j in judgements or []
        if j.name in KEY_METRICS and j.name not in mentioned and j.status in ("pass", "transient", "ended")
    ]
    if verdict is Verdict.ROLLBACK:
        if regressions:
            parts.append(
                f"{head} regressed after the deploy: " + "; ".join(_describe(j) for j in regressions) + "."
            )
        else:
            parts.append(f"{head} is failing after the deploy.")
        if ev.guards:
            parts.append("Hard guards: " + "; ".join(ev.guards) + ".")
        if ev.alarms:
            parts.append("No baseline before the deploy; absolute levels: " + "; ".join(ev.alarms) + ".")
    elif verdict is Verdict.ESCALATE:
        if regressions:
            parts.append(
                f"{head} shows a change that needs a human: "
                + "; ".join(_describe(j) for j in regressions)
                + "."
            )
        if ev.preexisting:
            worse = [j for j in ev.preexisting if j.worsened]
            parts.append(
                "Already degraded before the deploy and still ongoing: "
                + "; ".join(_describe(j) for j in ev.preexisting)
                + (
                    f"; {_names(worse)} got worse after the deploy, on the course of the same incident "
                    "(see the reasons per metric)."
                    if worse
                    else "; the deploy did not make it worse."
                )
            )
        if ev.load and not regressions:
            parts.append(
                f"{head}: "
                + "; ".join(_describe(j) for j in ev.load)
                + " rose with traffic"
                + (f" (requests/s x{ev.load_ratio:.2f})" if ev.load_ratio else "")
                + ": a capacity question, not a regression of the deploy."
            )
        if ev.alarms:
            parts.append("No baseline before the deploy; absolute levels: " + "; ".join(ev.alarms) + ".")
        if not regressions and not ev.preexisting and not ev.load and not ev.alarms:
            parts.append(f"{head}: metrics look normal but new error logs appeared.")
    else:
        parts.append(f"{head} looks healthy: no metric regressed persistently after the deploy.")
        if key:
            parts.append("Before → after the deploy: " + ", ".join(_describe(j) for j in key) + ".")
        if ev.transient:
            parts.append(
                "Recovered blip: " + "; ".join(f"{j.name} {j.result.reason}" for j in ev.transient) + "."
            )
        if ev.ended:
            parts.append(
                f"An anomaly that began before the deploy is over ({_names(ev.ended)} back to normal)."
            )
        if ev.load:
            parts.append(f"{_names(ev.load)} follow(s) a traffic rise, not the deploy.")
        if ev.improved:
            parts.append("Improved: " + ", ".join(_describe(j) for j in ev.improved) + ".")
        steady = [p for p in ev.old_errors if not p.category and p.status == "steady"]
        if steady:
            top = max(steady, key=lambda p: p.count_before + p.count_after)
            parts.append(
                f"{len(steady)} error log pattern(s) were already there before the deploy and continue "
                f"unchanged (e.g. {top.template[:80]!r}: "
                f"{top.count_before} lines before, {top.count_after} after)."
            )
    if categories:
        counts = {}
        for p in ev.new_errors:
            if p.category:
                counts[p.category] = counts.get(p.category, 0) + p.count_after
        parts.append(
            "New error logs since the deploy: "
            + ", ".join(f"{CATEGORY_TEXT.get(c, c)} ({n} lines)" for c, n in sorted(counts.items()))
            + "."
        )
    old = {}
    for p in ev.old_errors:
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
    if ev.low_traffic and ev.rps_after is not None:
        parts.append(f"Traffic is low ({ev.rps_after:.2f} req/s), so error ratios are noisy.")
    parts.append(f"Verdict {verdict.value} with confidence {confidence:.0%}.")
    return " ".join(parts)
