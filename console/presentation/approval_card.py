"""The approval card, in words an on-call engineer decides on in seconds: what Approve does, what
Reject and the timeout do (and when that is the dangerous choice), the two or three metrics the
decision rests on with the numbers the summary quotes, who started the run, the votes so far, how
the action did before, and whether its notification got out.

Pure (no Streamlit): the page hands over the approval row, its deployment row, the metric levels of
its snapshot (:func:`metric_levels`), the run's starters (``ApprovalService.starters``), the action
effectiveness table and the approval's notifications. :func:`describe_actions` is the one impure
part: it asks the service's executor what it would do (reading the services file), touching nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from console.analysis import judge_all
from console.analysis.metrics import (
    ERROR_RATE_GUARD,
    MEAN_METRICS,
    MEMORY_GUARD,
    MIN_TAIL_POINTS,
    TAIL_FRACTION,
    direction_of,
)
from console.domain.actions import (
    COLLECT_DIAGNOSTICS,
    FAILOVER_DATABASE,
    INCREASE_RESOURCES,
    NOTIFY_ONLY,
    RESTART,
    ROLLBACK,
    SCALE,
    wording,
)
from console.domain.models import Direction, Risk
from console.domain.names import RequesterSource, same_person
from console.domain.snapshot import SnapshotError, parse_snapshot
from console.loop.effectiveness import Effectiveness, lookup, root_cause_category
from console.loop.revisions import Target
from console.presentation.charts import metric_title
from console.presentation.formatting import (
    as_time,
    field,
    format_percent,
    metric_value,
    requester_source_text,
)

RISK_RANK = {Risk.CRITICAL.value: 0, Risk.HIGH.value: 1, Risk.MEDIUM.value: 2, Risk.LOW.value: 3}
OPEN_EVIDENCE_RISKS = (Risk.HIGH.value, Risk.CRITICAL.value)
GUARD_LEVELS = {"error_rate": ERROR_RATE_GUARD, "memory_utilization": MEMORY_GUARD}
"""The hard guards' absolute levels (console/analysis/metrics.py), drawn on the card's charts."""
USER_FACING = ("error_rate", "latency_p95_ms", "memory_utilization", "pod_restarts", "requests_per_second")
"""Order in which metrics are shown when several moved: what users feel first."""
MAX_DECISIVE = 3


def queue_order(approvals: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pending approvals by risk (CRITICAL first), then by the soonest expiry."""

    def key(item: Mapping[str, Any]) -> tuple[int, float, str]:
        deadline = as_time(field(item, "expires_at"))
        return (
            RISK_RANK.get(str(field(item, "risk", "")).upper(), len(RISK_RANK)),
            deadline.timestamp() if deadline else math.inf,
            str(field(item, "id", "")),
        )

    return sorted(approvals, key=key)


# -- the numbers the summary quotes -------------------------------------------------------------------


@dataclass(frozen=True)
class Levels:
    """A metric's level before the deploy and at the end of the verification window, as the analyzer
    states them in its reasons and summary (console/analysis/metrics.py: the baseline's median, and
    the median of the window's last half; the mean for sparse counts; for counts, the ratio of all
    requests on each side, or the p95 of the histogram's bucket counts)."""

    baseline: float | None
    now: float | None
    tail_points: int
    baseline_points: int
    statistic: str
    """``median``, ``mean``, ``counts`` or ``trend``."""
    pre_level: float | None = None
    """For a metric degraded since before the deploy (the analyzer's "preexisting"): its level just
    before the deploy, the "before" the summary quotes for it."""
    after_points: int = 0


def _statistic(name: str, basis: str) -> str:
    if basis == "counts":
        return "counts"
    return "mean" if name in MEAN_METRICS else "median"


def metric_levels(snapshot_doc: Mapping[str, Any] | None) -> dict[str, Levels]:
    """Each metric's :class:`Levels` in a stored snapshot (the analyzer's own judge, so the numbers
    are the summary's); empty when the snapshot cannot be read."""
    if not snapshot_doc:
        return {}
    try:
        snapshot = parse_snapshot(dict(snapshot_doc))
    except (SnapshotError, ValueError, TypeError, KeyError):
        return {}
    out = {}
    for judged in judge_all(snapshot)[0]:
        after = judged.after_points
        result = judged.result
        tail = min(after, max(MIN_TAIL_POINTS, math.ceil(after * TAIL_FRACTION))) if after else 0
        counted = result.basis == "counts"
        out[judged.name] = Levels(
            baseline=result.baseline_median if counted else (
                judged.baseline_level if judged.baseline_level is not None else result.baseline_median
            ),
            now=result.after_median if counted else judged.tail_level,
            tail_points=tail,
            baseline_points=result.baseline_points,
            statistic=_statistic(judged.name, result.basis),
            pre_level=judged.pre_level if judged.status == "preexisting" else None,
            after_points=after,
        )  # fmt: skip
    return out


def value_text(metric: str, value: float | None) -> str:
    """A metric value as people read it, exactly as the analyzer writes it: ``34.9%``, ``868 ms``."""
    return metric_value(metric, value)


def statistic_text(levels: Levels) -> str:
    """Which statistic each number is, e.g. ``median before the deploy → median of the last 20
    points after it``."""
    word = levels.statistic
    if word == "counts":
        return (
            f"all requests counted over the {levels.baseline_points} real scrapes before the deploy → "
            f"over the {levels.after_points} since it"
        )
    if levels.pre_level is not None:
        return (
            f"{word} just before the deploy (already degraded; {word} "
            f"{{baseline}} before that) → {word} of the last {levels.tail_points} points after it"
        )
    return f"{word} before the deploy → {word} of the last {levels.tail_points} points after it"


@dataclass(frozen=True)
class DecisiveMetric:
    name: str
    title: str
    before: str
    now: str
    statistic: str
    worse: bool
    """Moved in the bad direction (the judge flagged it)."""
    guard: str | None = None
    threshold: float | None = None
    threshold_text: str = ""
    now_value: float | None = None
    baseline_value: float | None = None


def _metric_items(decision: Mapping[str, Any]) -> list[dict[str, Any]]:
    metrics = decision.get("metrics")
    items = metrics.values() if isinstance(metrics, Mapping) else metrics if isinstance(metrics, list) else []
    return [dict(m) for m in items if isinstance(m, Mapping) and m.get("name")]


def _bad(item: Mapping[str, Any]) -> bool:
    classification = item.get("classification")
    if classification not in ("High", "Low"):
        return False
    direction = direction_of(str(item["name"]))
    if direction is Direction.INCREASE:
        return classification == "High"
    if direction is Direction.DECREASE:
        return classification == "Low"
    return True


STRIP_ALSO = ("error_rate", "latency_p95_ms")
"""What users feel: on the now strip beside the decisive metrics (a leak's card watches its errors)."""


def watched_metrics(decision: Mapping[str, Any], levels: Mapping[str, Levels]) -> list[DecisiveMetric]:
    """The now strip's metrics: the decisive ones, then errors and latency when the decision has them."""
    chosen = decisive_metrics(decision, levels)
    names = {m.name for m in chosen}
    extra = [
        m
        for m in decisive_metrics(decision, levels, limit=len(_metric_items(decision)), only=STRIP_ALSO)
        if m.name not in names
    ]
    return chosen + extra


def decisive_metrics(
    decision: Mapping[str, Any],
    levels: Mapping[str, Levels],
    limit: int = MAX_DECISIVE,
    only: Sequence[str] = (),
) -> list[DecisiveMetric]:
    """The few metrics the decision rests on: those behind a hard guard first, then those that moved
    the wrong way (user-facing ones first, then by effect size); with nothing flagged, the
    user-facing metrics there are, so the card always shows where the service stands."""
    items = [m for m in _metric_items(decision) if not only or m["name"] in only]

    def rank(item: Mapping[str, Any]) -> tuple[int, int, int, float]:
        name = str(item["name"])
        return (
            0 if item.get("guard") else 1,
            0 if _bad(item) else 1,
            USER_FACING.index(name) if name in USER_FACING else len(USER_FACING),
            -abs(float(item.get("effect_size") or 0.0)),
        )

    flagged = [m for m in items if m.get("guard") or _bad(m)] if not only else items
    chosen = sorted(flagged, key=rank)[:limit]
    if not chosen:
        chosen = sorted((m for m in items if m["name"] in USER_FACING), key=rank)[: min(limit, 2)]
    out = []
    for item in chosen:
        name = str(item["name"])
        lv = levels.get(name)
        before = lv.baseline if lv else item.get("baseline_median")
        now = lv.now if lv else item.get("after_median")
        statistic = statistic_text(lv) if lv else "median before the deploy → median after it"
        if lv is not None and lv.pre_level is not None:  # degraded before the deploy: the summary's "before"
            statistic = statistic.replace("{baseline}", value_text(name, lv.baseline))
            before = lv.pre_level
        threshold = GUARD_LEVELS.get(name)
        out.append(
            DecisiveMetric(
                name=name,
                title=_title(name, item),
                before=value_text(name, before),
                now=value_text(name, now),
                statistic=statistic,
                worse=bool(item.get("guard")) or _bad(item),
                guard=str(item["guard"]) if item.get("guard") else None,
                threshold=threshold,
                threshold_text=f"hard guard at {value_text(name, threshold)}" if threshold else "",
                now_value=now,
                baseline_value=before,
            )
        )
    return out


def _title(name: str, item: Mapping[str, Any]) -> str:
    """The metric's title, with the route it is about and that route's share of the requests."""
    title = metric_title(name).removesuffix(" (ms)")
    dimension = item.get("dimension")
    if not dimension:
        return title
    share = item.get("share")
    return f"{title} on {dimension}" + (
        f" ({share:.0%} of the requests)" if isinstance(share, int | float) else ""
    )


# -- what each choice does ----------------------------------------------------------------------------


def _deployment_text(deployment: Mapping[str, Any], key: str, default: str = "?") -> str:
    value = deployment.get(key)
    return str(value) if value not in (None, "") else default


def action_sentence(
    action: Mapping[str, Any], deployment: Mapping[str, Any], target: Target | None = None
) -> str:
    """What an action does, in one sentence: ``Roll back payment-service v1.2.3 → v1.2.2 in
    production``. For a live service the rollback's ``target`` comes from the revision history
    (never the announced previous version)."""
    name = str(action.get("name") or "?")
    params = action.get("params") if isinstance(action.get("params"), Mapping) else {}
    service = _deployment_text(deployment, "service", str(params.get("service") or "the service"))
    version = _deployment_text(deployment, "version")
    env = _deployment_text(deployment, "environment", "production")
    if name == ROLLBACK:
        if target is not None:
            if target.version is None:
                return f"Roll back {service} {version}: no known-good version to roll back to"
            return f"Roll back {service} {version} → {target.version} in {env}"
        to = str(params.get("to_version") or deployment.get("previous_version") or "the previous version")
        return f"Roll back {service} {version} → {to} in {env}"
    if name == SCALE:
        replicas = params.get("replicas")
        if replicas:
            return f"Scale {service} to {replicas} replicas in {env}"
        return f"Add replicas to {service} in {env}"
    if name == RESTART:
        return f"Restart {service}'s pods one at a time in {env}"
    if name == INCREASE_RESOURCES:
        return f"Raise the CPU and memory limits of {service} in {env}"
    if name == COLLECT_DIAGNOSTICS:
        return f"Collect heap/thread dumps, logs and events of {service} {version}"
    if name == FAILOVER_DATABASE:
        return f"Fail the database of {service} over to its standby in {env} (a brief write outage)"
    if name == NOTIFY_ONLY:
        return "Notify on-call; nothing changes"
    return f"Run {name} on {service} in {env}"


_CONSEQUENCES = {
    "error_rate": "errors are at {now}",
    "latency_p95_ms": "p95 latency is {now}",
    "memory_utilization": "memory is at {now} of its limit",
    "cpu_utilization": "CPU is at {now}",
    "pod_restarts": "pods restart {now}",
    "requests_per_second": "traffic is down to {now}",
}


def consequence(metric: DecisiveMetric) -> str:
    """``errors are at 34.9%``: where a bad metric stands, for the reject sentence."""
    return _CONSEQUENCES.get(metric.name, "{title} is at {now}").format(now=metric.now, title=metric.title)


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def reject_sentence(
    actions: Sequence[Mapping[str, Any]], deployment: Mapping[str, Any], metrics: Sequence[DecisiveMetric]
) -> str:
    """What Reject (and the timeout) does: ``Nothing runs: v1.2.3 stays live while errors are at
    34.9% and memory is at 91.8% of its limit.``"""
    bad = [consequence(m) for m in metrics if m.worse][:2]
    names = [str(a.get("name") or "?") for a in actions]
    while_text = f" while {_join(bad)}" if bad else ""
    if ROLLBACK in names:
        return f"Nothing runs: {_deployment_text(deployment, 'version')} stays live{while_text}."
    nouns = [wording(n)[1] for n in names]
    return f"Nothing runs: no {_join(nouns)}{while_text}; the deployment is marked escalated."


def timeout_sentence(expires_at: Any) -> str:
    deadline = as_time(expires_at)
    when = f"by {deadline.astimezone(UTC):%H:%M} UTC" if deadline else "in time"
    return f"If nobody decides {when}, the request expires and counts as a rejection: the same happens."


# -- the card -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    role: str
    """``deployed by`` · ``launched by`` · ``requested by``."""
    name: str
    source: str


@dataclass(frozen=True)
class ApprovalCard:
    id: str
    execution_id: str
    service: str
    version: str
    risk: str
    verdict: str
    severity: str
    confidence: str
    headline: str
    """What Approve does, all actions in one line (the card's title)."""
    approve: list[str]
    """One sentence per action."""
    how: list[str]
    """The executor's own words per action (``POST .../rollback to v1.2.2, then ...``)."""
    simulated: bool
    reject: str
    dangerous: bool
    """Rejecting (or letting it expire) leaves a regression live."""
    timeout: str
    evidence_open: bool
    metrics: list[DecisiveMetric]
    people: list[Person]
    rule: str
    required: int
    votes: list[str]
    still: str | None
    effectiveness: list[str]
    notification: str | None
    expires_at: str | None = None
    target: str | None = None
    """Where the rollback goes and why (``v1.0.0: healthy, verified 10:02 for 45 s``), from the
    revision history; None without a rollback on a live service."""
    target_notes: list[str] = dataclasses.field(default_factory=list)
    """The announced previous version's check (``... is known-bad ...: not a target``)."""
    alternatives: list[str] = dataclasses.field(default_factory=list)
    """The known-good versions an approver may pick instead."""
    target_version: str | None = None
    no_target: bool = False
    """A rollback with no known-good version: Approve is off, Reject escalates."""
    superseded: str | None = None
    """Why the approval no longer applies (the service moved on): Approve is off."""
    watch: list[DecisiveMetric] = dataclasses.field(default_factory=list)
    """What the now strip shows: the decisive metrics, then what users feel (errors, latency)."""
    verdict_rule: str = ""
    """The verdict rule that fired (console/analysis/verdict.py, ``RULES``)."""
    voters: list[str] = dataclasses.field(default_factory=list)
    """Who voted so far (a CRITICAL action's first approval): they cannot vote again."""


_ROLE_LABELS = {"deployer": "deployed", "launcher": "launched", "requester": "requested"}


def _with_requester(
    approval: Mapping[str, Any], starters: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The run's starters, with the approval's requester added when no starter is the requester."""
    people = [dict(p) for p in starters]
    requester = str(field(approval, "requested_by", "") or "")
    if requester and not any("requester" in (p.get("roles") or []) for p in people):
        people.append({"name": requester, "roles": ["requester"], "sources": {}})
    return people


def _where_from(roles: list[str], sources: Mapping[str, Any], approval: Mapping[str, Any]) -> list[str]:
    """Where the console got a person's name, once per distinct source, in the order of ``roles``."""
    requester_source = requester_source_text(field(approval, "requested_by_source"))
    # "the deployer named in the scenario file" is said once, not again for the request
    scenario_twice = (
        "deployer" in roles
        and sources.get("deployer") == "the scenario file"
        and field(approval, "requested_by_source") == RequesterSource.SCENARIO
    )
    words: list[str] = []
    for role in roles:
        if role == "requester" and scenario_twice:
            continue
        text = requester_source if role == "requester" else _source_words(str(sources.get(role) or ""))
        if text not in words:
            words.append(text)
    return words


def people_of(approval: Mapping[str, Any], starters: Sequence[Mapping[str, Any]]) -> list[Person]:
    """Who deployed, launched and requested the run, one entry per person (``deployed and requested
    by``), each with where the console got the name."""
    out: list[Person] = []
    for person in _with_requester(approval, starters):
        roles = [r for r in ("deployer", "launcher", "requester") if r in (person.get("roles") or [])]
        if not roles:
            continue
        sources = person.get("sources") if isinstance(person.get("sources"), Mapping) else {}
        label = _join([_ROLE_LABELS[r] for r in roles]) + " by"
        out.append(Person(label, str(person.get("name")), "; ".join(_where_from(roles, sources, approval))))
    return out


_SOURCE_WORDS = {
    "console sign-in": "signed in to the console",
    "console demo identity (unverified)": "a name picked in the console's demo mode, not verified",
    "launched_by label (unverified)": "the run's launched_by label, not verified",
}


def _source_words(source: str) -> str:
    """Where a deployer's or launcher's name came from, in words."""
    return _SOURCE_WORDS.get(source, source) or "where this name came from was not recorded"


def rule_sentence(approval: Mapping[str, Any], starters: Sequence[Mapping[str, Any]], required: int) -> str:
    """The starters' rule for this card (console/access/approvals.py), with the names it applies to."""
    requester = str(field(approval, "requested_by", "") or "")
    others = [
        str(p.get("name"))
        for p in starters
        if "requester" not in (p.get("roles") or []) and not same_person(str(p.get("name")), requester)
    ]
    if required <= 1:
        names = _join([requester, *others] if requester else others)
        return f"{names} started this run: the approval must come from someone else." if names else ""
    parts = []
    if others:
        parts.append(f"at most one of the {required} approvals may come from {_join(others)}")
    if requester:
        parts.append(f"{requester} cannot vote on their own request")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""


def votes_lines(votes: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    for vote in votes:
        verb = "approved" if vote.get("approved") else "rejected"
        comment = str(vote.get("comment") or "").strip()
        out.append(f"{vote.get('actor')} {verb}" + (f": “{comment}”" if comment else ""))
    return out


def still_needed(
    approval: Mapping[str, Any], starters: Sequence[Mapping[str, Any]], votes: Sequence[Mapping[str, Any]]
) -> str | None:
    """Who may still vote on a multi-approver action, or None when one approver decides."""
    required = int(field(approval, "required_approvals", 1) or 1)
    if required <= 1:
        return None
    approvals = [v for v in votes if v.get("approved")]
    missing = required - len(approvals)
    if missing <= 0:
        return None
    excluded = [f"{v.get('actor')} (voted)" for v in votes]
    requester = str(field(approval, "requested_by", "") or "")
    if requester:
        excluded.append(f"{requester} (requested it)")
    starter_names = [str(p.get("name")) for p in starters if "requester" not in (p.get("roles") or [])]
    starter_voted = any(any(same_person(str(v.get("actor")), n) for n in starter_names) for v in approvals)
    if starter_voted:
        excluded += [
            f"{n} (started the run)"
            for n in starter_names
            if not any(same_person(str(v.get("actor")), n) for v in votes)
        ]
    who = f"any approver except {_join(excluded)}" if excluded else "any approver"
    return f"Still needed: {missing} more approval{'s' if missing > 1 else ''} from {who}."


def notification_line(notifications: Iterable[Mapping[str, Any]]) -> str | None:
    """One line when the approval's notification did not get out (failed, or still being retried)."""
    failed = [n for n in notifications if n.get("status") == "failed"]
    if failed:
        first = failed[0]
        channels = _join(sorted({str(n.get("channel")) for n in failed}))
        error = str(first.get("last_error") or "no reason recorded")
        return (
            f"Notification not delivered to {channels} after {first.get('attempts') or 0} attempt(s): {error}"
        )
    retrying = [n for n in notifications if n.get("status") in ("pending", "sending") and n.get("attempts")]
    if retrying:
        first = retrying[0]
        return (
            f"Notification to {first.get('channel')} is being retried "
            f"({first.get('attempts')} attempt(s) so far: {first.get('last_error') or 'no reason recorded'})"
        )
    return None


def effectiveness_lines(
    decision: Mapping[str, Any], actions: Sequence[Mapping[str, Any]], table: Sequence[Effectiveness]
) -> list[str]:
    """``rollback_deployment resolved 9 of 10 out-of-memory regressions`` for each action with a
    measured history (simulated runs are said as such and not counted); nothing without history."""
    category = root_cause_category(decision)
    out = []
    for action in actions:
        found = lookup(table, category, str(action.get("name")))
        if found is not None and (found.total or found.simulated_total):
            out.append(found.sentence)
    return out


def _decided(approval: Mapping[str, Any], decision: Mapping[str, Any], key: str) -> str:
    """The approval's ``verdict`` or ``severity``, else the decision's, else empty."""
    return str(field(approval, key, "") or decision.get(key) or "")


def _rejecting_is_dangerous(metrics: Sequence[DecisiveMetric], verdict: str, severity: str) -> bool:
    """Rejecting (or letting it expire) leaves a regression live: a decisive metric got worse and the
    verdict is ROLLBACK, a hard guard fired or the severity is high."""
    bad = any(m.worse for m in metrics)
    return bad and (verdict == "ROLLBACK" or any(m.guard for m in metrics) or severity in OPEN_EVIDENCE_RISKS)


def _target_fields(target: Target | None) -> dict[str, Any]:
    """What the card says of the rollback's target (nothing without a rollback on a live service)."""
    if target is None:
        return {
            "target": None,
            "target_notes": [],
            "alternatives": [],
            "target_version": None,
            "no_target": False,
        }
    return {
        "target": target.text,
        "target_notes": list(target.notes),
        "alternatives": [v for v in target.alternatives if v != target.version],
        "target_version": target.version,
        "no_target": target.version is None,
    }


def _voters(votes: Sequence[Any]) -> list[str]:
    return [str(v.get("actor")) for v in votes if isinstance(v, Mapping) and v.get("actor")]


def _card_actions(approval: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in field(approval, "actions", []) or [] if isinstance(a, Mapping)]


def build_card(
    approval: Mapping[str, Any],
    *,
    deployment: Mapping[str, Any] | None,
    levels: Mapping[str, Levels],
    starters: Sequence[Mapping[str, Any]],
    effectiveness: Sequence[Effectiveness] = (),
    notifications: Iterable[Mapping[str, Any]] = (),
    how: Sequence[str] = (),
    simulated: bool = False,
    target: Target | None = None,
    superseded: str | None = None,
) -> ApprovalCard:
    """Everything the card says about one pending approval (a row of ``ApprovalService.pending``);
    ``target`` is the approval service's rollback choice, ``superseded`` why the service moved past
    the decision (both None for a scenario)."""
    dep = dict(deployment or {})
    dep.setdefault("service", field(approval, "service", "?"))
    decision = field(approval, "decision", {}) or {}
    actions = _card_actions(approval)
    metrics = decisive_metrics(decision, levels)
    verdict, severity = _decided(approval, decision, "verdict"), _decided(approval, decision, "severity")
    risk = str(field(approval, "risk", "") or "")
    votes = list(field(approval, "votes", []) or [])
    required = int(field(approval, "required_approvals", 1) or 1)
    sentences = [action_sentence(a, dep, target) for a in actions]
    return ApprovalCard(
        id=str(field(approval, "id", "")),
        execution_id=str(field(approval, "execution_id", "")),
        service=str(dep.get("service") or "?"),
        version=str(dep.get("version") or "?"),
        risk=risk,
        verdict=verdict,
        severity=severity,
        confidence=format_percent(field(approval, "confidence")),
        headline="; ".join(sentences) or "No action named",
        approve=sentences,
        how=list(how),
        simulated=simulated,
        reject=reject_sentence(actions, dep, metrics),
        dangerous=_rejecting_is_dangerous(metrics, verdict, severity),
        timeout=timeout_sentence(field(approval, "expires_at")),
        evidence_open=risk.upper() in OPEN_EVIDENCE_RISKS,
        metrics=metrics,
        people=people_of(approval, starters),
        rule=rule_sentence(approval, starters, required),
        required=required,
        votes=votes_lines(votes),
        still=still_needed(approval, starters, votes),
        effectiveness=effectiveness_lines(decision, actions, effectiveness),
        notification=notification_line(notifications),
        expires_at=field(approval, "expires_at"),
        superseded=superseded,
        watch=watched_metrics(decision, levels),
        verdict_rule=str(decision.get("rule") or ""),
        voters=_voters(votes),
        **_target_fields(target),
    )


# -- the decision bar ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who looks at the card, as far as deciding goes."""

    name: str | None
    """The signed-in person, or None."""
    can_decide: bool = False
    """An approver or admin."""
    role: str = ""
    sign_in: str = "password"
    """How people sign in here (:data:`console.access.signin.Mode`): ``password``, ``oidc``,
    ``demo``, ``none`` or ``broken``."""


@dataclass(frozen=True)
class DecisionBar:
    """The top of a card: what is decided, on what, the two buttons and, for a button that is off,
    why, in words. Everything an on-call engineer needs to decide, in the first screen of a phone."""

    verdict: str
    confidence: str
    does: str
    """What Approve does, all actions in one line."""
    target: str | None
    """For a rollback: the version it goes to and why (the revision history's words)."""
    approve_off: str | None
    reject_off: str | None
    sign_in: bool = False
    """Nobody is signed in and this console has a sign-in: the form goes right here."""


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


def _viewer_off(viewer: Viewer) -> tuple[str | None, bool]:
    """Why this viewer cannot decide at all (or None), and whether a sign-in form helps."""
    if viewer.name is None:
        if viewer.sign_in == "broken":
            return "The sign-in configuration cannot be used: nobody can decide until it is fixed.", False
        if viewer.sign_in == "none":
            return "No sign-in is configured on this console: nobody can decide here.", False
        return "Sign in to decide.", True
    if not viewer.can_decide:
        return (
            f"You are signed in as a {viewer.role or 'viewer'}: you can read approvals, "
            "approvers decide them.",
            False,
        )
    return None, False


def decision_bar(
    card: ApprovalCard,
    viewer: Viewer,
    *,
    approve_refusal: str | None = None,
    reject_refusal: str | None = None,
    closed: str | None = None,
    now: datetime | None = None,
) -> DecisionBar:
    """The card's decision bar for ``viewer``. ``approve_refusal`` / ``reject_refusal`` are the
    starters' rule's answers (``ApprovalService.vote_refusal``: self-review), ``closed`` why the
    approval is no longer pending (``already_message``); the approval service checks every one of
    these again when a button is pressed."""
    off: str | None = None
    sign_in = False
    deadline = as_time(card.expires_at)
    if closed:
        off = _sentence(closed)
    elif deadline is not None and deadline <= (now or datetime.now(UTC)):
        off = (
            f"Expired at {deadline.astimezone(UTC):%H:%M} UTC: nobody decided in time, so it counts "
            "as a rejection."
        )
    else:
        off, sign_in = _viewer_off(viewer)
    if off is None and viewer.name is not None and any(same_person(viewer.name, v) for v in card.voters):
        off = "You already voted on this: the next approval must come from someone else."
    approve_off = reject_off = off
    if off is None:
        approve_off = _sentence(approve_refusal) if approve_refusal else None
        reject_off = _sentence(reject_refusal) if reject_refusal else None
        if card.superseded:
            approve_off = _sentence(f"Superseded: {card.superseded}") + " Reject escalates the deployment."
        elif card.no_target:
            approve_off = _sentence(card.target or "no known-good version to roll back to") + (
                " Reject escalates the deployment."
            )
    return DecisionBar(
        verdict=card.verdict,
        confidence=card.confidence,
        does=card.headline,
        target=card.target,
        approve_off=approve_off,
        reject_off=reject_off,
        sign_in=sign_in,
    )


def describe_actions(
    approval: Mapping[str, Any], deployment: Mapping[str, Any] | None, settings: Any
) -> tuple[list[str], bool]:
    """(the executor's own words for each action, simulated?). A recorded scenario or a snapshot given
    as evidence runs in the simulated executor; a watched live deployment in its service's executor
    (``console.loop.steps.executor_for``, as ``execute`` will). Touches nothing."""
    from console.executors import ActionRequest
    from console.loop.steps import executor_for

    dep = dict(deployment or {})
    source = str(dep.get("source") or "")
    live = source not in ("", "scenario", "snapshot") and not dep.get("scenario")
    executor, problem = executor_for(dep, dep.get("scenario"), settings, live=live)
    if executor is None:
        return [f"the service's executor cannot be used: {problem}"], False
    lines = []
    for action in field(approval, "actions", []) or []:
        if not isinstance(action, Mapping):
            continue
        params = action.get("params") if isinstance(action.get("params"), Mapping) else {}
        request = ActionRequest(
            action=str(action.get("name") or "?"),
            service=str(dep.get("service") or field(approval, "service", "unknown")),
            params=dict(params),
            version=dep.get("version"),
            previous_version=dep.get("previous_version"),
            deployment_id=dep.get("id"),
            execution_id=str(field(approval, "execution_id", "")) or None,
        )
        lines.append(executor.describe(request))
    return lines, bool(executor.simulated)
