"""How one value looks on a page: times, durations, percentages, countdowns, the badge and text
colour of a verdict, execution state or deployment status, and markdown escaping.

Records that may arrive either as dataclasses or as dicts (SQLite rows, Kestra outputs) are read
through :func:`field`. Pure functions: no Streamlit, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pandas as pd

from console.domain.executions import State
from console.domain.models import parse_time
from console.domain.vocabulary import DeploymentStatus

# ---------------------------------------------------------------------------------------------
# Generic access and formatting
# ---------------------------------------------------------------------------------------------


def field(record: Any, name: str, default: Any = None) -> Any:
    """``record[name]`` for mappings, ``record.name`` otherwise; ``default`` when absent."""
    if record is None:
        return default
    value = record.get(name, default) if isinstance(record, Mapping) else getattr(record, name, default)
    if isinstance(value, Enum):
        value = value.value  # enums (Role, Verdict, State) to their text
    return default if value is None else value


def as_time(value: Any) -> datetime | None:
    """A timestamp from a datetime, ISO text or epoch seconds; None when it is none of those."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and math.isfinite(value):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None


def format_duration(seconds: float | None) -> str:
    """Human duration like Kestra shows it: ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_percent(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{digits}f}%"


def countdown_text(expires_at: Any, now: datetime | None = None) -> str:
    """Text for an approval's deadline: ``expires in 12m 30s`` or ``expired 3m ago``."""
    deadline = as_time(expires_at)
    if deadline is None:
        return "no deadline"
    now = now or datetime.now(UTC)
    left = (deadline - now).total_seconds()
    if left <= 0:
        return f"expired {_clock(-left)} ago"
    return f"expires in {_clock(left)}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def seconds_left(expires_at: Any, now: datetime | None = None) -> float | None:
    deadline = as_time(expires_at)
    if deadline is None:
        return None
    return (deadline - (now or datetime.now(UTC))).total_seconds()


# ---------------------------------------------------------------------------------------------
# Status colours and labels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    label: str
    color: str
    """One of Streamlit's badge colours: red, orange, green, blue, violet, gray."""
    icon: str


_VERDICT_BADGES = {
    "ROLLBACK": Badge("ROLLBACK", "red", ":material/undo:"),
    "ESCALATE": Badge("ESCALATE", "orange", ":material/priority_high:"),
    "CONTINUE": Badge("CONTINUE", "green", ":material/check_circle:"),
}

_STATE_COLORS = {
    State.SUCCESS: "green",
    State.WARNING: "orange",
    State.PAUSED: "orange",
    State.FAILED: "red",
    State.KILLED: "red",
    State.KILLING: "red",
    State.CANCELLED: "gray",
    State.RUNNING: "blue",
    State.CREATED: "gray",
    State.QUEUED: "gray",
    State.SUBMITTED: "gray",
    State.RETRYING: "violet",
    State.RESTARTED: "violet",
}

_STATE_ICONS = {
    "green": ":material/check_circle:",
    "orange": ":material/pause_circle:",
    "red": ":material/error:",
    "blue": ":material/play_circle:",
    "violet": ":material/replay:",
    "gray": ":material/schedule:",
}

_STATUS_COLORS = {
    DeploymentStatus.ROLLED_BACK: "red",
    DeploymentStatus.ROLLBACK_FAILED: "red",
    DeploymentStatus.AWAITING_APPROVAL: "orange",
    DeploymentStatus.ESCALATED: "orange",
    DeploymentStatus.HEALTHY: "green",
    DeploymentStatus.REMEDIATED: "green",
    DeploymentStatus.ANALYZING: "blue",
    DeploymentStatus.FAILED: "red",
    DeploymentStatus.CANCELLED: "gray",
}
DEPLOYMENT_STATUSES: list[str] = [
    status.value
    for status in (
        DeploymentStatus.ROLLBACK_FAILED,
        DeploymentStatus.ROLLED_BACK,
        DeploymentStatus.AWAITING_APPROVAL,
        DeploymentStatus.ESCALATED,
        DeploymentStatus.ANALYZING,
        DeploymentStatus.HEALTHY,
        DeploymentStatus.REMEDIATED,
        DeploymentStatus.FAILED,
        DeploymentStatus.CANCELLED,
    )
]
"""The deployment statuses in the order the Deployments page's filter lists them (worst first)."""


def verdict_badge(verdict: Any) -> Badge:
    text = str(field({"v": verdict}, "v", "") or "").upper()
    return _VERDICT_BADGES.get(text, Badge(text or "—", "gray", ":material/help:"))


def state_badge(state: Any) -> Badge:
    text = str(field({"s": state}, "s", "") or "").upper()
    try:
        color = _STATE_COLORS.get(State(text), "gray")
    except ValueError:
        color = "gray"
    return Badge(text or "—", color, _STATE_ICONS[color])


def status_badge(status: str | None) -> Badge:
    text = (status or "").strip().lower()
    color = _STATUS_COLORS.get(text, "gray")
    return Badge(text or "—", color, _STATE_ICONS[color])


SEVERITY_COLORS = {"LOW": "green", "MEDIUM": "orange", "HIGH": "red", "CRITICAL": "red"}
RISK_COLORS = SEVERITY_COLORS

CLASSIFICATION_LABELS = {"Pass": "Pass", "High": "High ▲", "Low": "Low ▼", "NoData": "No data"}


STATUS_TEXT_COLORS = {
    "red": "#C62828",
    "orange": "#B26A00",
    "green": "#2E7D32",
    "blue": "#1565C0",
    "violet": "#6A1B9A",
    "gray": "#5F6B7A",
}


def cell_style(value: Any) -> str:
    """CSS for a verdict/status/state cell: its badge colour, bold (used with pandas Styler)."""
    text = str(value or "")
    badge = _VERDICT_BADGES.get(text.upper())
    if badge is None:
        badge = state_badge(text) if text.upper() in State.__members__ else status_badge(text)
    return f"color: {STATUS_TEXT_COLORS[badge.color]}; font-weight: 600"


def style_statuses(frame: pd.DataFrame) -> Any:
    """A Styler colouring verdict and status (the text stays plain text; no HTML is built)."""
    columns = [c for c in ("verdict", "status", "state") if c in frame]
    return frame.style.map(cell_style, subset=columns)


_MD_SPECIAL = set("\\`*_[]<>#|~$:")


def md_escape(text: Any) -> str:
    """Text safe to put inside Streamlit markdown: emphasis, links, HTML-looking tags, colour
    directives (``:red[...]``) and math are shown literally, not interpreted."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")
