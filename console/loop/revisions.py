"""The revision history of a service: every version seen running, what is known of each
(known-good, known-bad, unknown) and why, and the rollback target that follows from it.

Pure functions over **revision events** (dicts, stored by ``console/storage/revisions.py``):

- ``seen``: a version was seen: announced (a hint, never evidence), or running as the target
  itself says (the executor's state probe);
- ``baseline_healthy`` (weak good): the version the target says ran before a deploy served the whole
  pre-deploy baseline window without an error rate over ``BASELINE_ERROR_BURST``, memory at its
  guard or a crash restart;
- ``verified_healthy`` (good): measured healthy through a full post-action window after the loop
  rolled back to it, or through the verification and post-action windows of a CONTINUE;
- ``rolled_back`` (bad): the loop rolled it back;
- ``judged_faulty`` (bad): the loop decided ROLLBACK on it and the rollback did not run (rejected,
  expired, superseded): escalated as faulty;
- ``crash_looping`` (bad): the target said it was not ready with crash restarts;
- ``marked_good`` / ``marked_bad``: an operator's mark (role-checked and audited in
  ``console/access/revisions.py``).

A version's status comes from its **newest strong event** (everything but ``seen`` and
``baseline_healthy``); with none, a ``baseline_healthy`` makes it known-good; else unknown. So the
loop's own evidence, or an operator, can always overturn an earlier judgement, while a quiet
baseline never clears a version the loop found faulty. Nothing from outside (an announcement's
``previous_version``, an alert's label) ever makes a version good or bad: it is a hint, checked
against the history (:func:`rollback_target`).

Only watched live deployments write events (a scenario is a simulation: its versions are
fictional).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.analysis.metrics import MEMORY_GUARD
from console.analysis.traffic import BASELINE_ERROR_BURST
from console.domain.actions import ROLLBACK, changes_service
from console.domain.models import parse_time

KNOWN_GOOD = "known-good"
KNOWN_BAD = "known-bad"
UNKNOWN = "unknown"
STATUSES = (KNOWN_GOOD, KNOWN_BAD, UNKNOWN)

SEEN = "seen"
BASELINE_HEALTHY = "baseline_healthy"
VERIFIED_HEALTHY = "verified_healthy"
ROLLED_BACK = "rolled_back"
JUDGED_FAULTY = "judged_faulty"
CRASH_LOOPING = "crash_looping"
MARKED_GOOD = "marked_good"
MARKED_BAD = "marked_bad"
GOOD_KINDS = frozenset({BASELINE_HEALTHY, VERIFIED_HEALTHY, MARKED_GOOD})
BAD_KINDS = frozenset({ROLLED_BACK, JUDGED_FAULTY, CRASH_LOOPING, MARKED_BAD})
STRONG_KINDS = frozenset({VERIFIED_HEALTHY, MARKED_GOOD} | BAD_KINDS)
KINDS = frozenset({SEEN} | GOOD_KINDS | BAD_KINDS)

BASELINE_MIN_COVERAGE = 0.8
"""The part of the baseline window its points must span to count as a full window."""


def event(
    service: str,
    version: str,
    kind: str,
    at: str,
    reason: str,
    *,
    source: str,
    execution_id: str | None = None,
    actor: str | None = None,
    window: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """One revision event as stored; ``key`` makes a re-projected execution write it once."""
    if kind not in KINDS:
        raise ValueError(f"unknown revision event {kind!r}")
    key = f"{execution_id or actor or 'console'}:{service}:{version}:{kind}"
    if actor and kind in (MARKED_GOOD, MARKED_BAD):
        key += f":{at}"  # every mark is kept
    return {
        "key": key,
        "service": service,
        "version": version,
        "kind": kind,
        "at": at,
        "reason": reason,
        "source": source,
        "execution_id": execution_id,
        "actor": actor,
        "window_start": window[0],
        "window_end": window[1],
    }


@dataclass(frozen=True)
class Revision:
    """One version of a service as the history knows it."""

    service: str
    version: str
    status: str
    reason: str
    """Why, in words (``healthy, verified 10:02 for 45 s``); empty for unknown."""
    decided_at: str | None
    """When the deciding event happened."""
    first_seen: str
    last_seen: str
    deciding_kind: str | None = None
    window: tuple[str | None, str | None] = (None, None)
    """The measured window behind a known-good status."""
    marked_by: str | None = None
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "decided_at": self.decided_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "deciding_kind": self.deciding_kind,
            "window": {"start": self.window[0], "end": self.window[1]},
            "marked_by": self.marked_by,
            "events": self.events,
        }


def _epoch(text: str | None) -> float:
    try:
        return parse_time(str(text)).timestamp()
    except (ValueError, TypeError):
        return -math.inf


def _clock(text: str | None) -> str:
    try:
        return parse_time(str(text)).strftime("%H:%M")
    except (ValueError, TypeError):
        return "?"


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = _epoch(start), _epoch(end)
    return b - a if math.isfinite(a) and math.isfinite(b) and b >= a else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def reason_text(ev: Mapping[str, Any]) -> str:
    """Why an event decides a status, in the words the approval card uses."""
    kind = ev.get("kind")
    at = _clock(ev.get("window_end") or ev.get("at"))
    span = _duration(_seconds(ev.get("window_start"), ev.get("window_end")))
    span = f" for {span}" if span else ""
    if kind == VERIFIED_HEALTHY:
        return f"healthy, verified {at}{span}"
    if kind == BASELINE_HEALTHY:
        return f"healthy through the baseline before a deploy, {at}{span}"
    if kind == MARKED_GOOD:
        return f"marked known-good by {ev.get('actor') or '?'} at {at}: {ev.get('reason') or ''}".rstrip(": ")
    if kind == MARKED_BAD:
        return f"marked known-bad by {ev.get('actor') or '?'} at {at}: {ev.get('reason') or ''}".rstrip(": ")
    if kind == ROLLED_BACK:
        return f"rolled back by the loop at {at}"
    if kind == JUDGED_FAULTY:
        return f"judged faulty at {at} ({ev.get('reason') or 'ROLLBACK'})"
    if kind == CRASH_LOOPING:
        return f"crash-looping at {at} ({ev.get('reason') or 'not ready'})"
    return str(ev.get("reason") or "")


def status_of(events: Sequence[Mapping[str, Any]]) -> tuple[str, Mapping[str, Any] | None]:
    """(status, the deciding event) of one version from its events (any order)."""
    ordered = sorted(events, key=lambda e: (_epoch(e.get("at")), str(e.get("kind"))))
    strong = [e for e in ordered if e.get("kind") in STRONG_KINDS]
    if strong:
        last = strong[-1]
        return (KNOWN_GOOD if last["kind"] in GOOD_KINDS else KNOWN_BAD), last
    weak = [e for e in ordered if e.get("kind") == BASELINE_HEALTHY]
    if weak:
        return KNOWN_GOOD, weak[-1]
    return UNKNOWN, None


def revisions(events: Iterable[Mapping[str, Any]]) -> list[Revision]:
    """Every version in ``events``, the most recently seen first."""
    by_version: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for ev in events:
        if isinstance(ev, Mapping) and ev.get("version") and ev.get("service"):
            by_version.setdefault((str(ev["service"]), str(ev["version"])), []).append(ev)
    out = []
    for (service, version), evs in by_version.items():
        status, deciding = status_of(evs)
        stamps = sorted((str(e.get("at")) for e in evs), key=_epoch)
        out.append(
            Revision(
                service=service,
                version=version,
                status=status,
                reason=reason_text(deciding) if deciding else "",
                decided_at=str(deciding.get("at")) if deciding else None,
                first_seen=stamps[0],
                last_seen=stamps[-1],
                deciding_kind=str(deciding.get("kind")) if deciding else None,
                window=(deciding.get("window_start"), deciding.get("window_end"))
                if deciding
                else (None, None),
                marked_by=str(deciding.get("actor")) if deciding and deciding.get("actor") else None,
                events=len(evs),
            )
        )
    return sorted(out, key=lambda r: (_epoch(r.last_seen), r.version), reverse=True)


# -- the rollback target -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a rollback of ``current`` may go: ``version`` (None when no known-good version exists)
    and why, the hint's check, and the other known-good versions an approver may pick."""

    current: str
    version: str | None
    reason: str
    notes: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    window: tuple[str | None, str | None] = (None, None)
    chosen_by: str | None = None
    """Set when an approver picked it instead of the newest known-good version."""

    @property
    def text(self) -> str:
        """``v1.0.0: healthy, verified 10:02 for 45 s`` or why there is none."""
        return f"{self.version}: {self.reason}" if self.version else self.reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "reason": self.reason,
            "current": self.current,
            "notes": list(self.notes),
            "alternatives": list(self.alternatives),
            "baseline": {"start": self.window[0], "end": self.window[1]},
            "chosen_by": self.chosen_by,
            "source": "revision history",
        }


class TargetRefused(ValueError):
    """An approver's choice of target is not a known-good version (the message says why)."""


def rollback_target(
    history: Sequence[Revision],
    current: str,
    *,
    hint: str | None = None,
    chosen: str | None = None,
    chosen_by: str | None = None,
) -> Target:
    """The newest known-good version other than ``current``, never a known-bad one. ``hint`` (an
    announcement's ``previous_version``, an alert's label) is only checked and noted; ``chosen`` is
    an approver's pick among the known-good versions (TargetRefused when it is not one)."""
    good = [r for r in history if r.status == KNOWN_GOOD and r.version != current]
    by_version = {r.version: r for r in history}
    notes: list[str] = []
    if hint and hint != current:
        hinted = by_version.get(hint)
        if hinted is None:
            notes.append(
                f"the announced previous version {hint} is not in the revision history: not a target"
            )
        elif hinted.status == KNOWN_BAD:
            notes.append(
                f"the announced previous version {hint} is known-bad ({hinted.reason}): not a target"
            )
        elif hinted.status == UNKNOWN:
            notes.append(f"the announced previous version {hint} was never verified healthy: not a target")
    names = tuple(r.version for r in good)
    if chosen:
        picked = by_version.get(chosen)
        if picked is None or picked.status != KNOWN_GOOD or chosen == current:
            why = (
                "it is the version under judgement"
                if chosen == current
                else f"it is {picked.status} ({picked.reason or 'never verified'})"
                if picked is not None
                else "it is not in the revision history"
            )
            raise TargetRefused(f"{chosen} cannot be the rollback target: {why}")
        return Target(current, chosen, picked.reason, tuple(notes), names, picked.window, chosen_by)
    if not good:
        service = history[0].service if history else "this service"
        why = f"no known-good version of {service} other than {current}: nothing safe to roll back to"
        return Target(current, None, why, tuple(notes), ())
    newest = good[0]
    return Target(current, newest.version, newest.reason, tuple(notes), names, newest.window)


# -- evidence from a run -----------------------------------------------------------------------------------


def _sample_interval(series: Mapping[str, list[tuple[float, float]]]) -> float:
    """The typical time between two samples of a metric (the median gap; 0 with fewer than two)."""
    gaps = sorted(b[0] - a[0] for points in series.values() for a, b in itertools.pairwise(sorted(points)))
    return gaps[len(gaps) // 2] if gaps else 0.0


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (a record's parts may be missing or junk)."""
    return value if isinstance(value, Mapping) else {}


def _points_before(metrics: Any, deployed: float) -> dict[str, list[tuple[float, float]]]:
    """Each metric's finite samples from before the deploy, as (epoch, value); malformed points and
    metrics without such a sample are left out."""
    before: dict[str, list[tuple[float, float]]] = {}
    for name, points in metrics.items() if isinstance(metrics, Mapping) else []:
        kept = []
        for point in points if isinstance(points, list) else []:
            try:
                at, value = _epoch(point[0]), float(point[1])
            except (TypeError, ValueError, IndexError):
                continue
            if at < deployed and math.isfinite(value):
                kept.append((at, value))
        if kept:
            before[str(name)] = kept
    return before


def _worst(before: Mapping[str, list[tuple[float, float]]], metric: str) -> float:
    """The highest value of ``metric`` in the baseline (-inf without a sample)."""
    return max((v for _, v in before.get(metric, [])), default=-math.inf)


def _baseline_problem(
    before: Mapping[str, list[tuple[float, float]]], start: float, end: float, baseline_s: float
) -> str | None:
    """Why the baseline sampled from ``start`` to ``end`` is not a full, healthy window (None when it
    is), the first problem found: too short, an error burst, memory at its guard, a crash restart."""
    if end - start < BASELINE_MIN_COVERAGE * baseline_s - 2 * _sample_interval(before):
        return f"the baseline spans {end - start:.0f} s of {baseline_s:g} s"
    worst_errors = _worst(before, "error_rate")
    if worst_errors > BASELINE_ERROR_BURST:
        return f"error rate reached {worst_errors * 100:.1f}%"
    worst_memory = _worst(before, "memory_utilization")
    if worst_memory >= MEMORY_GUARD:
        return f"memory reached {worst_memory * 100:.0f}% of its limit"
    restarts = sum(v for _, v in before.get("pod_restarts", []))
    if restarts > 0:
        return f"{restarts:.0f} crash restart(s)"
    return None


def baseline_health(snapshot: Mapping[str, Any], baseline_s: float) -> dict[str, Any]:
    """Whether the pre-deploy baseline of a snapshot was a full, healthy window: points spanning at
    least ``BASELINE_MIN_COVERAGE`` of ``baseline_s`` (measured between the first and the last real
    sample, each of which may sit up to one sample interval inside the window's edges), error rate
    never over ``BASELINE_ERROR_BURST`` (the analysis's own bound for a failing baseline), memory
    never at its guard, no crash restart. ``{"healthy", "reason", "start", "end"}``."""
    deployed = _epoch((snapshot.get("deployment") or {}).get("deployed_at"))
    before = _points_before(snapshot.get("metrics") or {}, deployed)
    stamps = [at for points in before.values() for at, _ in points]
    if not stamps:
        return {"healthy": False, "reason": "no point before the deploy", "start": None, "end": None}
    start, end = min(stamps), max(stamps)
    window = {"start": _iso(start), "end": _iso(end)}
    problem = _baseline_problem(before, start, end, baseline_s)
    if problem is not None:
        return {**window, "healthy": False, "reason": problem}
    return {
        **window,
        "healthy": True,
        "reason": f"a full baseline of {end - start:.0f} s without errors or restarts",
    }


def _iso(epoch: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def events_from_collect(
    deployment: Mapping[str, Any], verification: Mapping[str, Any] | None, *, execution_id: str, at: str
) -> list[dict[str, Any]]:
    """What a watched deployment's collect tells the history: the announced version (seen); what the
    target says runs (seen, or crash-looping); the version the target says ran before, healthy
    through the baseline when it was."""
    service = str(deployment.get("service") or "")
    version = str(deployment.get("version") or "")
    if not service or not version or not isinstance(verification, Mapping):
        return []
    out = [event(service, version, SEEN, at, "announced", source="announcement", execution_id=execution_id)]
    state = (
        verification.get("target_state") if isinstance(verification.get("target_state"), Mapping) else None
    )
    if state and state.get("version"):
        running = str(state["version"])
        out.append(
            event(
                service,
                running,
                SEEN,
                at,
                "running (the target's state)",
                source="probe",
                execution_id=execution_id,
            )
        )
        restarts = state.get("restarts")
        if isinstance(restarts, int) and restarts >= 2:  # ready between crashes or not: it keeps crashing
            out.append(
                event(
                    service,
                    running,
                    CRASH_LOOPING,
                    at,
                    state.get("text") or f"{restarts} crash restarts",
                    source="probe",
                    execution_id=execution_id,
                )
            )
        previous = state.get("previous_version")
        health = verification.get("baseline_health")
        if previous and isinstance(health, Mapping) and health.get("healthy") is True:
            out.append(
                event(
                    service,
                    str(previous),
                    BASELINE_HEALTHY,
                    str(health.get("end") or at),
                    str(health.get("reason")),
                    source="probe",
                    execution_id=execution_id,
                    window=(health.get("start"), health.get("end")),
                )
            )
    return out


@dataclass(frozen=True)
class _Run:
    """The finished run of a watched deployment whose record the events come from."""

    service: str
    version: str
    execution_id: str
    at: str
    """When the record was read: the time of an event without a time of its own."""

    @classmethod
    def of(cls, record: Mapping[str, Any], at: str) -> _Run | None:
        """The run of ``record``; None for a simulation (a scenario's versions are fictional) or a
        record that does not name the service, the version and the execution."""
        if record.get("scenario") or (record.get("outcome") or {}).get("simulated"):
            return None
        deployment = record.get("deployment") or {}
        run = cls(
            str(deployment.get("service") or ""),
            str(deployment.get("version") or ""),
            str(record.get("execution_id") or ""),
            at,
        )
        return run if run.service and run.version and run.execution_id else None

    def event(
        self,
        version: str,
        kind: str,
        at: str,
        reason: str,
        *,
        source: str = "loop",
        window: tuple[str | None, str | None] = (None, None),
    ) -> dict[str, Any]:
        return event(
            self.service,
            version,
            kind,
            at,
            reason,
            source=source,
            execution_id=self.execution_id,
            window=window,
        )


def _done_rollback(executed: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The rollback that was done for real (not simulated), if any."""
    return next(
        (
            a
            for a in executed
            if a.get("name") == ROLLBACK and a.get("status") == "done" and not a.get("simulated")
        ),
        None,
    )


def _judgement(
    run: _Run, rollback: Mapping[str, Any] | None, record: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The run's verdict on the deployed version: rolled back, or judged faulty when the rollback
    it called for did not run."""
    if rollback is not None:
        return [
            run.event(run.version, ROLLED_BACK, str(rollback.get("finished_at") or run.at), "rolled back")
        ]
    if (record.get("decision") or {}).get("verdict") == "ROLLBACK":
        status = (record.get("approval") or {}).get("status")
        why = f"ROLLBACK; the rollback {status or 'did not run'}"
        return [run.event(run.version, JUDGED_FAULTY, run.at, why)]
    return []


def _crash_looping(run: _Run, health: Mapping[str, Any], end: str) -> list[dict[str, Any]]:
    """The version the target said was not ready or crash-looping at the window's end."""
    restarts = health.get("restarts")
    crashing = health.get("ready") is False or (isinstance(restarts, int) and restarts >= 2)
    if not health.get("version") or not crashing:
        return []
    reason = str(health.get("text") or "not ready")
    return [run.event(str(health["version"]), CRASH_LOOPING, end, reason, source="probe")]


def _verified_healthy(
    run: _Run,
    rollback: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    executed: Sequence[Mapping[str, Any]],
    window: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The version a resolved post-action window measured healthy: the rollback's target (when the
    target runs it), or a CONTINUE's version when no action changed the service."""
    end = str(window.get("end") or run.at)
    if rollback is not None:
        target = (rollback.get("params") or {}).get("to_version")
        running = _mapping(_mapping(record.get("measured")).get("health")).get("version")
        if not target or running not in (None, target):
            return []
        span = (window.get("start"), window.get("end"))
        return [run.event(str(target), VERIFIED_HEALTHY, end, "measured after the rollback", window=span)]
    if (record.get("decision") or {}).get("verdict") != "CONTINUE" or any(
        a.get("status") == "done" and changes_service(a.get("name")) for a in executed
    ):
        return []
    whole = ((record.get("deployment") or {}).get("deployed_at"), window.get("end"))
    return [run.event(run.version, VERIFIED_HEALTHY, end, "measured after the deploy", window=whole)]


def _measured_for_real(measured: Mapping[str, Any]) -> bool:
    """A post-action window measured resolved on the service's own Prometheus (not simulated)."""
    return (
        measured.get("status") == "resolved"
        and measured.get("source") == "prometheus"
        and not measured.get("simulated")
    )


def events_from_record(record: Mapping[str, Any], *, at: str) -> list[dict[str, Any]]:
    """What a finished run of a watched live deployment tells the history (its outcome record):
    the version it rolled back (bad), the version it judged faulty and did not roll back (bad), a
    version the target said was crash-looping after the actions (bad), and the version measured
    healthy through the post-action window (good): the rollback's target, or a CONTINUE's version."""
    run = _Run.of(record, at)
    if run is None:
        return []
    measured = _mapping(record.get("measured"))
    window = _mapping(measured.get("window"))
    executed = [a for a in record.get("executed") or [] if isinstance(a, Mapping)]
    rollback = _done_rollback(executed)
    out = _judgement(run, rollback, record)
    out += _crash_looping(run, _mapping(measured.get("health")), str(window.get("end") or at))
    if _measured_for_real(measured):
        out += _verified_healthy(run, rollback, record, executed, window)
    return out
