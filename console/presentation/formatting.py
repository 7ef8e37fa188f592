"""How one value looks on a page: times, durations, percentages, countdowns, the badge and text
colour of a verdict, execution state or deployment status, and markdown escaping.

Records that may arrive either as dataclasses or as dicts (SQLite rows, Kestra outputs) are read
through :func:`field`. Pure functions: no Streamlit, no I/O.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pandas as pd

from console.analysis.metrics import UNITS, format_value
from console.domain.executions import State
from console.domain.models import parse_time
from console.domain.names import RequesterSource
from console.domain.text import strip_invisible
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


def metric_value(metric: str, value: float | None) -> str:
    """A metric's value as people read it and as the analyzer writes it in its summary (``34.9%``,
    ``868 ms``, ``121.5 req/s``); a metric the analyzer has no unit for but whose name ends in
    ``_ms`` is in milliseconds too."""
    if value is None or not math.isfinite(value):
        return "—"
    if metric not in UNITS and metric.endswith("_ms"):
        return f"{value:.0f} ms"
    return format_value(metric, value)


def format_percent(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{digits}f}%"


COUNTDOWN_SECONDS_FROM_S = 300.0
"""In its last five minutes an approval's countdown counts seconds; before that, minutes."""
COUNTDOWN_MINUTES_EVERY_S = 10.0
"""How often a countdown that counts minutes is drawn again (its text changes once a minute)."""


def countdown_text(expires_at: Any, now: datetime | None = None) -> str:
    """Text for an approval's deadline: ``expires in 12 min`` (minutes left, rounded down),
    ``expires in 4m 30s`` in the last five minutes, or ``expired 3m 00s ago``."""
    deadline = as_time(expires_at)
    if deadline is None:
        return "no deadline"
    now = now or datetime.now(UTC)
    left = (deadline - now).total_seconds()
    if left <= 0:
        return f"expired {_clock(-left)} ago"
    if left > COUNTDOWN_SECONDS_FROM_S and left < 3600:
        return f"expires in {int(left // 60)} min"
    return f"expires in {_clock(left)}"


def countdown_ticks_every_second(expires_at: Any, now: datetime | None = None) -> bool:
    """Whether the countdown is drawn again every second: while it counts seconds (from one
    :data:`COUNTDOWN_MINUTES_EVERY_S` before its last five minutes, and once expired until the page
    reruns); otherwise every :data:`COUNTDOWN_MINUTES_EVERY_S`. An open page redrawn every second
    cost its browser and the server a third of a core."""
    left = seconds_left(expires_at, now)
    return left is not None and left <= COUNTDOWN_SECONDS_FROM_S + COUNTDOWN_MINUTES_EVERY_S


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
    DeploymentStatus.ROLLED_BACK: "green",  # the rollback worked: the verdict badge says the deploy was bad
    DeploymentStatus.ROLLBACK_FAILED: "red",
    DeploymentStatus.RESULT_UNKNOWN: "orange",
    DeploymentStatus.SUPERSEDED: "gray",
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
        DeploymentStatus.RESULT_UNKNOWN,
        DeploymentStatus.ROLLED_BACK,
        DeploymentStatus.AWAITING_APPROVAL,
        DeploymentStatus.ESCALATED,
        DeploymentStatus.ANALYZING,
        DeploymentStatus.HEALTHY,
        DeploymentStatus.REMEDIATED,
        DeploymentStatus.FAILED,
        DeploymentStatus.SUPERSEDED,
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


_STATUS_ICONS = {DeploymentStatus.ROLLED_BACK: ":material/undo:"}


def status_badge(status: str | None) -> Badge:
    text = (status or "").strip().lower()
    color = _STATUS_COLORS.get(text, "gray")
    return Badge(text or "—", color, _STATUS_ICONS.get(text, _STATE_ICONS[color]))


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
    text = str(value or "").split(" · ")[0]  # "rolled back · simulated" is coloured as rolled back
    badge = _VERDICT_BADGES.get(text.upper())
    if badge is None:
        badge = state_badge(text) if text.upper() in State.__members__ else status_badge(text)
    return f"color: {STATUS_TEXT_COLORS[badge.color]}; font-weight: 600"


def style_statuses(frame: pd.DataFrame) -> Any:
    """A Styler colouring verdict and status (the text stays plain text; no HTML is built)."""
    columns = [c for c in ("verdict", "status", "state") if c in frame]
    return frame.style.map(cell_style, subset=columns)


_REQUESTER_SOURCES = {
    RequesterSource.CONSOLE_SIGN_IN: "signed in to the console",
    RequesterSource.CONSOLE_DEMO: "a name picked in the console's demo mode, not verified",
    RequesterSource.KESTRA_INPUT: "from the Kestra input, not verified",
    RequesterSource.CLI: "typed on the command line (--as), not verified",
    RequesterSource.SCENARIO: "the deployer named in the scenario file",
    RequesterSource.LAUNCHER: "named by whoever launched the run, not verified",
}


def requester_source_text(source: Any) -> str:
    """How the console knows who requested an approval, in words for the approval card."""
    text = str(source or "").strip()
    if not text:
        return "where this name came from was not recorded"
    known = _REQUESTER_SOURCES.get(text)
    if known is not None:
        return known
    return f"from the {text}" + ("" if "unverified" in text else " (as announced)")


WORD_JOINER = "\u2060"
"""Invisible, zero-width, and neither whitespace nor punctuation: put before ``www``, ``http``
and ``@`` it stops Streamlit's Markdown from turning them into links (see :func:`md_escape`)."""
_ASCII_PUNCTUATION = frozenset(string.punctuation)
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_AUTOLINK_STARTS = re.compile(r"(?i)(?=www|https?|@)")


def md_escape(text: Any) -> str:
    """Text shown literally inside Streamlit Markdown (``st.markdown``, ``st.caption``,
    ``st.error``..., labels): no emphasis, link, image, HTML, colour directive, math, emoji or
    icon shortcode, and no autolink.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows it for all of them),
    which defeats every construct the parser recognises. Autolinks need more: Streamlit's
    remark-gfm also finds ``www.``, ``http(s)://`` and e-mail addresses in the *parsed* text,
    where the escapes are already gone, and links them only when what precedes them is the start
    of the text, whitespace or punctuation. So a word joiner (U+2060, invisible) goes before every
    ``www``, ``http`` and ``@``, and after every ``:`` (emoji and ``:material/...:`` shortcodes are
    found in parsed text too). Line breaks become spaces; control and invisible format
    characters (bidi overrides, zero-width spaces) are dropped."""
    cleaned = _LINE_BREAKS.sub(" ", str(text))
    kept = []
    for ch in cleaned:
        category = unicodedata.category(ch)
        if category == "Cc" and ch != "\t":
            kept.append(" ")
        elif category not in ("Cf", "Cs", "Co"):
            kept.append(ch)
    joined = _AUTOLINK_STARTS.sub(WORD_JOINER, "".join(kept)).replace(":", ":" + WORD_JOINER)
    return "".join("\\" + ch if ch in _ASCII_PUNCTUATION else ch for ch in joined)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def csv_cell(value: Any) -> Any:
    """A cell fit for a CSV a spreadsheet will open: text starting (after spaces) with ``=``,
    ``+``, ``-``, ``@``, a tab or a line break (or their full-width forms) is prefixed with ``'``
    so it is read as text, never as a formula (``=HYPERLINK(...)`` in a name or a comment); bidi
    and zero-width controls are dropped from text. Other values are returned unchanged."""
    if not isinstance(value, str):
        return value
    value = strip_invisible(value)
    return "'" + value if value.lstrip(" ").startswith(_FORMULA_STARTS) else value


def plain(text: Any) -> str:
    """What :func:`md_escape` renders as (its escapes and word joiners removed): for tests and
    for comparing what a page shows with the text it was given."""
    return re.sub(r"\\(.)", r"\1", str(text)).replace(WORD_JOINER, "")


def mirror_caption(state: Mapping[str, Any], now: datetime) -> str:
    """How fresh the console's copy of Kestra's executions is, in one line."""
    success = state.get("last_success")
    since = f"{format_duration((now - as_time(success)).total_seconds())} ago" if success else "never"
    if state.get("last_error"):
        return f"Kestra's runs last copied {since}; the last try failed: {state['last_error']}"
    return f"Kestra's runs copied into the console {since}" if success else "Copying Kestra's runs…"
