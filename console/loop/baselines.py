"""What the console's own records say about the versions around a deploy, and the healthy reference a
deploy is compared with when the window before it is no baseline.

- **bad versions**: versions the loop judged ROLLBACK on real runs (never a scenario or a snapshot
  given as evidence): a rollback never proposes one of them;
- **known good**: the newest version judged CONTINUE on a real run and not measured unresolved
  since; its own verification window, re-read from the service's metric source, is the reference
  when the pre-deploy window is unhealthy (a crash loop, failing requests, a bad previous version,
  an open incident: see :mod:`console.analysis.traffic`);
- **an open incident** of the service.

The records are read once per run; a console that cannot read them (a task container without the
database) judges without them and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.domain.evidence import History, Reference
from console.domain.models import parse_time
from console.settings import Settings
from console.telemetry import MetricSource, TelemetryError
from console.telemetry.times import format_ts

log = logging.getLogger(__name__)

NOT_A_DEPLOYMENT = ("scenario", "snapshot", "alertmanager")
"""Row sources that are not a real deployment of the service."""
HISTORY_ROWS = 50


@dataclass
class Context:
    history: History = field(default_factory=History)
    known_good: Mapping[str, Any] | None = None
    """The known-good deployment's row (version, deployed_at, id)."""
    notes: list[str] = field(default_factory=list)


def _real(row: Mapping[str, Any]) -> bool:
    return (
        not row.get("scenario")
        and not row.get("simulated")
        and (row.get("source") or "") not in NOT_A_DEPLOYMENT
    )


def history_from_rows(
    rows: list[Mapping[str, Any]], incidents: list[Mapping[str, Any]], *, version: str, deployed_at: float
) -> Context:
    """The context from deployment rows (newest first) and the service's open incidents."""
    bad: list[str] = []
    known_good = None
    for row in rows:
        if not _real(row):
            continue
        verdict = row.get("verdict")
        if verdict == "ROLLBACK" and row.get("version") not in bad:
            bad.append(str(row.get("version")))
        try:
            at = parse_time(str(row.get("deployed_at"))).timestamp()
        except (TypeError, ValueError):
            continue
        good = verdict == "CONTINUE" and row.get("measured_status") != "not_resolved"
        if known_good is None and good and at < deployed_at:
            known_good = row
    if known_good is not None and known_good.get("version") in bad:
        known_good = None
    incident = next((i for i in incidents if _before(i.get("opened_at"), deployed_at)), None)
    open_incident = None
    if incident is not None:
        open_incident = str(incident.get("summary") or incident.get("alert_key") or incident.get("id"))
    history = History(
        bad_versions=tuple(v for v in bad if v != version),
        open_incident=open_incident,
        known_good_version=str(known_good["version"]) if known_good else None,
    )
    return Context(history, known_good)


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
            rows = store.list_deployments(service=service, limit=HISTORY_ROWS)
            incidents = store.incidents(status="open", service=service, limit=5)
        finally:
            store.close()
    except Exception as exc:  # a task container without the console's database
        log.info("no deployment history for %s: %s", service, type(exc).__name__)
        return Context(notes=[f"baseline: the console's records cannot be read ({type(exc).__name__})"])
    return history_from_rows(rows, incidents, version=version, deployed_at=deployed_at)


def known_good_reference(
    source: MetricSource, context: Context, window_s: float, step_s: float | None
) -> Reference | None:
    """The known-good deployment's own verification window, re-read now (None without one, or when
    the source has no counts for it: a note says so)."""
    row = context.known_good
    if row is None:
        return None
    try:
        start = parse_time(str(row["deployed_at"])).timestamp()
        fetched = source.fetch(start, start + window_s, step_s=step_s)
    except (TelemetryError, ValueError, TypeError, KeyError) as exc:
        context.notes.append(f"baseline: the known-good window could not be read ({exc})")
        return None
    evidence = fetched.evidence
    if evidence is None or not evidence.requests:
        context.notes.append(f"baseline: no request counts in the known-good window of {row.get('version')}")
        return None
    label = (
        f"the last known-good version {row.get('version')} (deployment {row.get('ref') or row.get('id')}, "
        f"{format_ts(start)} + {window_s:g} s)"
    )
    return Reference(
        kind="known-good",
        label=label,
        version=str(row.get("version")),
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
