"""The approval card's "now" strip: the decisive metrics and the service's state as they are while
the card is open, beside what the decision saw, with what changed since called out ("error rate
100.0% since 10:22:40", "v1.1.0-fast is running now: this approval is superseded").

Pure: the page reads the samples and the state (:func:`console.loop.now.read_now`) every few
seconds in a fragment and hands them here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.loop.impact import ABSOLUTE_WORSE, RELATIVE_WORSE, bad_since, is_bad
from console.presentation.approval_card import DecisiveMetric
from console.presentation.formatting import as_time, metric_value


@dataclass(frozen=True)
class StripItem:
    metric: str
    title: str
    then: str
    """At the decision (the card's "now" then)."""
    now: str
    """The newest real sample; ``—`` when there is none."""
    changed: str | None = None
    """What changed since the decision, in words, or None."""
    since: str | None = None
    """When the metric's current state began (``10:22:40``), when it is bad now."""
    bad: bool = False
    sampled_at: str | None = None


@dataclass(frozen=True)
class NowStrip:
    items: list[StripItem] = field(default_factory=list)
    running: str | None = None
    """What the service runs now, as its target says (``v1.2.0-leak · ready · 0 crash restarts``)."""
    superseded: str | None = None
    """Why the approval no longer applies (Approve is then off), or None."""
    changes: list[str] = field(default_factory=list)
    """Everything that changed since the decision, one line each."""
    problems: list[str] = field(default_factory=list)
    """What could not be read (a source down): said, never replaced by old figures."""
    read_at: str = ""


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def _moved(metric: str, then: float | None, now: float) -> bool:
    """Whether a metric moved since the decision, by the impact's own margins."""
    if then is None or not math.isfinite(then):
        return False
    delta = abs(now - then)
    return delta >= ABSOLUTE_WORSE.get(metric, 0.0) and delta >= abs(then) * RELATIVE_WORSE


def now_strip(
    metrics: Sequence[DecisiveMetric],
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    running: Mapping[str, Any] | None = None,
    superseded: str | None = None,
    problems: Sequence[str] = (),
    read_at: Any = None,
) -> NowStrip:
    """The strip: for each decisive metric its level at the decision and its newest real sample,
    what changed and since when; the running version and state; a superseded decision first."""
    items: list[StripItem] = []
    changes: list[str] = []
    if superseded:
        changes.append(f"{superseded}: this approval is superseded")
    for metric in metrics:
        points = sorted(
            (float(t), float(v)) for t, v in series.get(metric.name, []) if math.isfinite(float(v))
        )
        if not points:
            items.append(StripItem(metric.name, metric.title, metric.now, "—"))
            continue
        at, value = points[-1]
        bad = is_bad(metric.name, value, metric.baseline_value)
        was_bad = metric.now_value is not None and is_bad(
            metric.name, metric.now_value, metric.baseline_value
        )
        # "since" only for what went bad after the decision (the samples read start there)
        since_at = bad_since(metric.name, points, metric.baseline_value) if bad and not was_bad else None
        since = _clock(since_at) if since_at is not None else None
        now_text = metric_value(metric.name, value)
        changed = None
        if bad and not was_bad:
            changed = f"{metric.title} {now_text} since {since} (was {metric.now} at the decision)"
        elif was_bad and not bad:
            changed = f"{metric.title} back to {now_text} (was {metric.now} at the decision)"
        elif _moved(metric.name, metric.now_value, value):
            changed = f"{metric.title} {now_text} now (was {metric.now} at the decision)"
        if changed:
            changes.append(changed)
        items.append(
            StripItem(metric.name, metric.title, metric.now, now_text, changed, since, bad, _clock(at))
        )
    state_text = str(running.get("text")) if isinstance(running, Mapping) and running.get("text") else None
    when = as_time(read_at)
    return NowStrip(
        items=items,
        running=state_text,
        superseded=superseded,
        changes=changes,
        problems=list(problems),
        read_at=when.strftime("%H:%M:%S") if when else "",
    )
