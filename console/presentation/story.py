"""One deployment's story as the Deployments page tells it: the timeline's events
(:func:`console.loop.timeline.build_timeline`) as rows with a time, an icon, a title, who, how long
and what came of it; the deployment's outcome in words beside an execution's state; the version
that runs now. Pure: no Streamlit, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from console.loop.timeline import TimelineEvent
from console.presentation.formatting import Badge, as_time, field, format_duration, state_badge, status_badge

ICONS = {
    "deployed": ":material/rocket_launch:",
    "loop_started": ":material/play_circle:",
    "step": ":material/task_alt:",
    "decision": ":material/gavel:",
    "approval_requested": ":material/hourglass_top:",
    "vote": ":material/how_to_vote:",
    "refused": ":material/block:",
    "approval": ":material/verified:",
    "action": ":material/build:",
    "outcome": ":material/monitoring:",
    "finished": ":material/flag:",
    "killed": ":material/cancel:",
    "recovered": ":material/restart_alt:",
}
_BAD = {"failed", "refused", "rejected", "expired", "not resolved", "killed", "cancelled", "rollback failed"}
_GOOD = {"success", "done", "approved", "resolved"}


@dataclass(frozen=True)
class StoryRow:
    time: str
    """``19:45:47.915`` (UTC), or empty when the event has no time."""
    icon: str
    kind: str
    title: str
    actor: str
    duration: str
    detail: str
    tone: str
    """``red`` · ``green`` · ``gray``: how the event went."""
    simulated: bool


def _tone(event: TimelineEvent) -> str:
    status = str(event.status or "").lower()
    if event.kind == "finished" and status == "success":
        return "gray"  # the loop ran to its end; the outcome row says how the deployment did
    if status in _BAD or status.startswith("rollback failed"):
        return "red"
    if status in _GOOD:
        return "green"
    return "gray"


def _actor(event: TimelineEvent) -> str:
    """Who, unless the title or detail names them already ("bob approved", "by seed")."""
    actor = str(event.actor or "")
    if not actor or actor in event.title or f"by {actor}" in event.detail:
        return ""
    return actor


def story_rows(events: Iterable[TimelineEvent]) -> list[StoryRow]:
    """The timeline's events as rows; a step's row says its duration, a vote's its comment."""
    rows = []
    for event in events:
        at = event.at.astimezone(UTC) if event.at else None
        rows.append(
            StoryRow(
                time=f"{at:%H:%M:%S}.{at.microsecond // 1000:03d}" if at else "",
                icon=ICONS.get(event.kind, ":material/circle:"),
                kind=event.kind,
                title=event.title,
                actor=_actor(event),
                duration=format_duration(event.duration_s) if event.duration_s is not None else "",
                detail=event.detail if event.kind != "step" else "",
                tone=_tone(event),
                simulated=event.simulated,
            )
        )
    return rows


def outcome_text(deployment: Mapping[str, Any] | None) -> str:
    """The deployment's outcome in words for the execution's header: ``rolled back · simulated ·
    measured resolved``; empty when there is no deployment row."""
    if not deployment:
        return ""
    parts = [str(field(deployment, "status", "") or "unknown")]
    if field(deployment, "simulated"):
        parts.append("simulated")
    if field(deployment, "measured_status"):
        parts.append(f"measured {str(field(deployment, 'measured_status')).replace('_', ' ')}")
    return " · ".join(parts)


def outcome_color(deployment: Mapping[str, Any] | None) -> str:
    return status_badge(str(field(deployment, "status", "") or "")).color if deployment else "gray"


def run_badge(state: Any, deployment: Mapping[str, Any] | None) -> Badge:
    """An execution's state as its header shows it beside the deployment's outcome. Kestra's
    SUCCESS says the loop ran to its end, not that all is well: next to a deployment it reads "loop
    finished", green only when the outcome is (a rejected or escalated run is never a green
    SUCCESS). A failed or killed run keeps its own state."""
    badge = state_badge(state)
    if not deployment or badge.label != "SUCCESS":
        return badge
    good = outcome_color(deployment) == "green"
    return Badge("loop finished", "green" if good else "gray", ":material/flag:")


def running_parts(row: Mapping[str, Any]) -> tuple[str, str]:
    """(the version that runs now, a note): ``("v1.2.2", "rolled back from v1.2.3 · simulated")``
    after a rollback, ``("v1.2.3", "")`` when the deployed version stayed."""
    version = str(field(row, "version", "") or "?")
    running = str(field(row, "running_version", "") or version)
    if running != version:
        return running, f"rolled back from {version}" + (" · simulated" if field(row, "simulated") else "")
    return version, ""


def running_text(row: Mapping[str, Any]) -> str:
    """``v1.2.2 · rolled back from v1.2.3 · simulated`` or ``v1.2.3`` (plain text)."""
    running, note = running_parts(row)
    return f"{running} · {note}" if note else running


def time_text(value: Any) -> str:
    """``2026-11-29 19:26:03 UTC`` from a stored time."""
    at = as_time(value)
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if at else "?"


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def postmortem_filename(deployment: Mapping[str, Any] | None, execution_id: str, suffix: str = "") -> str:
    """``postmortem-payment-service-v1.2.3-<execution>.md``."""
    dep = deployment or {}
    parts = ["postmortem", str(dep.get("service") or ""), str(dep.get("version") or ""), execution_id[:12]]
    name = "-".join(_SLUG.sub("-", p).strip("-") for p in parts if p)
    return f"{name}{suffix}.md"
