"""What the console knows of the versions around a deploy, and the healthy reference a deploy is
compared with when the window before it is no baseline.

Everything about versions comes from the service's revision history (:mod:`console.loop.revisions`,
the one record of what is known-good and known-bad, written by watched live runs and operators):

- **bad versions**: the known-bad ones (rolled back, judged faulty, crash-looping, marked bad);
- **known good**: the rollback target the history gives (the newest known-good version other than
  the one deployed); and the newest known-good version measured before the deploy (the deployed one
  too, when it is redeployed), whose window, re-read from the service's metric source, is the
  reference when the pre-deploy window is unhealthy (a crash loop, failing requests, a bad previous
  version, an open incident: see :mod:`console.analysis.traffic`);
- **an open incident** of the service (the store's incidents).

The records are read once per run; a console that cannot read them (a task container without the
database) judges without them and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.domain.evidence import History, Reference
from console.domain.models import parse_time
from console.loop import revisions
from console.settings import Settings
from console.telemetry import MetricSource, TelemetryError
from console.telemetry.times import format_ts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownGood:
    """The version a deploy may be compared with, and the measured window that made it known-good."""

    version: str
    reason: str
    start: str | None
    end: str | None


@dataclass
class Context:
    history: History = field(default_factory=History)
    known_good: KnownGood | None = None
    notes: list[str] = field(default_factory=list)


def context_from_history(
    history: Sequence[revisions.Revision],
    incidents: list[Mapping[str, Any]],
    *,
    version: str,
    deployed_at: float,
) -> Context:
    """The context of a deploy of ``version`` from the service's revision history and its open
    incidents (one opened before the deploy counts)."""
    bad = tuple(r.version for r in history if r.status == revisions.KNOWN_BAD and r.version != version)
    target = revisions.rollback_target(history, version)
    measured = [r for r in history if r.status == revisions.KNOWN_GOOD and _before(r.window[1], deployed_at)]
    # the reference may be the deployed version itself (a redeploy of a version known good)
    known_good = None
    if measured:
        newest = measured[0]
        known_good = KnownGood(newest.version, newest.reason, newest.window[0], newest.window[1])
    incident = next((i for i in incidents if _before(i.get("opened_at"), deployed_at)), None)
    open_incident = None
    if incident is not None:
        open_incident = str(incident.get("summary") or incident.get("alert_key") or incident.get("id"))
    return Context(
        History(bad_versions=bad, open_incident=open_incident, known_good_version=target.version),
        known_good,
    )


def _before(stamp: Any, moment: float) -> bool:
    try:
        return parse_time(str(stamp)).timestamp() < moment
    except (TypeError, ValueError):
        return False


def read_context(service: str, version: str, deployed_at: float, settings: Settings) -> Context:
    """The context from the console's store; an empty one with a note when it cannot be read."""
    try:
        from console.storage import Store

        store = Store(settings.db_path)
        try:
            events = store.revisions.events(service)
            incidents = store.incidents.list(status="open", service=service, limit=5)
        finally:
            store.close()
    except Exception as exc:  # a task container without the console's database
        log.info("no revision history for %s: %s", service, type(exc).__name__)
        return Context(notes=[f"baseline: the console's records cannot be read ({type(exc).__name__})"])
    history = revisions.revisions(events)
    return context_from_history(history, incidents, version=version, deployed_at=deployed_at)


def known_good_reference(source: MetricSource, context: Context, step_s: float | None) -> Reference | None:
    """The known-good version's measured window, re-read now (None without one, or when the source
    has no counts for it: a note says so)."""
    good = context.known_good
    if good is None:
        return None
    if not good.start or not good.end:
        context.notes.append(
            f"baseline: {good.version} is known-good ({good.reason}) with no measured window"
        )
        return None
    try:
        start, end = parse_time(good.start).timestamp(), parse_time(good.end).timestamp()
        fetched = source.fetch(start, end, step_s=step_s)
    except (TelemetryError, ValueError, TypeError) as exc:
        context.notes.append(f"baseline: the known-good window could not be read ({exc})")
        return None
    evidence = fetched.evidence
    if evidence is None or not evidence.requests:
        context.notes.append(f"baseline: no request counts in the known-good window of {good.version}")
        return None
    label = (
        f"the last known-good version {good.version} ({good.reason}; {format_ts(start)} to {format_ts(end)})"
    )
    return Reference(
        kind="known-good",
        label=label,
        version=good.version,
        requests=evidence.requests,
        latency=evidence.latency,
    )


def attach(snapshot: dict[str, Any], context: Context, reference: Reference | None) -> None:
    """Put the history and the reference into a snapshot document's evidence (when it has some)."""
    evidence = snapshot.get("evidence")
    if not isinstance(evidence, dict):
        return
    evidence["history"] = context.history.to_dict()
    evidence["reference"] = reference.to_dict() if reference is not None else None
