"""Where a run stands in the embedded engine's queue, as the Deployments page and the API say it:
"queued, N ahead" for a run that is due but waits its turn, "waiting until HH:MM:SS: what for" for
a run that watches a window (it holds no worker meanwhile), instead of a bare "analyzing"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from console.domain.vocabulary import DeploymentStatus


def queue_state(position: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The API's ``queue`` of a run: ``{"state": "queued", "ahead": n, "reason", "since"}`` or
    ``{"state": "waiting", "until", "reason"}``; None when the run is not in the queue."""
    if not position:
        return None
    if position.get("due"):
        return {
            "state": "queued",
            "ahead": int(position.get("ahead") or 0),
            "reason": position.get("reason"),
            "since": _iso(position.get("queued_at")),
        }
    return {"state": "waiting", "until": _iso(position.get("due_at")), "reason": position.get("reason")}


def run_progress(status: str | None, position: Mapping[str, Any] | None) -> str:
    """The status to show: an ``analyzing`` run's place in the queue, else the status itself."""
    text = str(status or "")
    state = queue_state(position)
    if state is None or text != DeploymentStatus.ANALYZING.value:
        return text
    if state["state"] == "queued":
        return f"queued, {state['ahead']} ahead"
    until = _clock(position.get("due_at") if position else None)
    reason = str(state.get("reason") or "its next look")
    return f"waiting until {until}: {reason}" if until else f"waiting: {reason}"


def _iso(unix: Any) -> str | None:
    if not isinstance(unix, int | float):
        return None
    return datetime.fromtimestamp(float(unix), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(unix: Any) -> str:
    if not isinstance(unix, int | float):
        return ""
    return datetime.fromtimestamp(float(unix), UTC).strftime("%H:%M:%S")
