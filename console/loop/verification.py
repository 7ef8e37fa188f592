"""Watching a live verification window: re-analyse as points arrive, decide as soon as the evidence
is conclusive, at the latest when the window ends.

After a deploy at ``deployed_at`` the window runs until ``deployed_at + verify_s``. Every
``poll_s`` seconds the snapshot over ``[deployed_at - baseline_s, now]`` is fetched again and
analysed by the rules analyzer (:func:`console.analysis.analyze`). The watch ends:

- **early**, with a ROLLBACK, when the evidence is conclusive (the rule, in one place). An
  evaluation is *conclusive* when the judge says ROLLBACK and either

  * a **hard guard** fired (error rate, memory, crash loop; see ``console/analysis/metrics.py``), or
  * the **judge at the strict level** (:data:`STRICT`: p < ``STRICT_ALPHA`` = ALPHA / 100 and
    ``|Cliff's delta| >= STRICT_EFFECT``, every other rule unchanged) says ROLLBACK too;

  and the window ends early when ``CONFIRMATIONS`` consecutive evaluations are conclusive, each
  with at least ``EARLY_MIN_POINTS`` points after the deploy. The judge reads the last half of
  what it has seen (at least 5 points), so together these keep a burst of a few seconds right
  after a rollout (cold caches, a warm-up) from ending a healthy deploy's window: the failure
  must hold for most of two consecutive tails, 10 points or more after the deploy;

- at the **window's end** otherwise, with whatever the normal judge says then. CONTINUE and
  ESCALATE are only ever given there: a healthy deploy is judged on its whole window, and a rise
  that recovers within the window is a transient, not a rollback.

Nothing here sleeps or reads the clock directly: ``clock`` and ``sleep`` are injected, so the rule
is tested without waiting. Fetching is injected too (the ``collect`` step gives one that reads the
service's configured sources).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from console.analysis import analyze
from console.analysis.metrics import ALPHA, Level
from console.domain.models import Decision, Verdict
from console.domain.snapshot import parse_snapshot

STRICT_ALPHA = ALPHA / 100
"""Significance the strict judge asks for (1e-4 with ALPHA = 0.01)."""
STRICT_EFFECT = 0.8
"""|Cliff's delta| the strict judge asks for: far beyond "large" (0.474, Romano et al. 2006)."""
STRICT = Level(alpha=STRICT_ALPHA, min_effect=STRICT_EFFECT)
CONFIRMATIONS = 2
"""Consecutive conclusive evaluations that end the window early."""
EARLY_MIN_POINTS = 10
"""Points after the deploy (of the metric with most) an evaluation needs to count towards an early end."""
DEFAULT_POLL_S = 2.0
MAX_NOTES = 20

EARLY = "early"
WINDOW_END = "window end"


class WatchError(RuntimeError):
    """The snapshot could not be fetched at the window's end (one line)."""


@dataclass(frozen=True)
class Fetched:
    """What one fetch returned: a snapshot document and the source's notes and graph links."""

    snapshot: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """One look at the window so far."""

    end: float
    """End of the evaluated window (Unix seconds)."""
    decision: Decision
    conclusive: str | None
    """"guard" or "strict" when this evaluation is conclusive for a ROLLBACK, else None."""

    @property
    def points_after(self) -> int:
        return max((m.after_points for m in self.decision.metrics), default=0)


@dataclass
class WatchResult:
    snapshot: dict[str, Any]
    decision: Decision
    ended: str
    """:data:`EARLY` or :data:`WINDOW_END`."""
    reason: str
    evaluations: int
    elapsed_s: float
    """From the deploy to the end of the window the decision rests on."""
    notes: list[str]
    links: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The ``verification`` part of the collect step's output."""
        return {
            "ended": self.ended,
            "reason": self.reason,
            "evaluations": self.evaluations,
            "elapsed_s": round(self.elapsed_s, 3),
            "notes": list(self.notes),
            "links": dict(self.links),
        }


def evaluate(snapshot_doc: dict[str, Any], end: float) -> Evaluation:
    """Analyse the snapshot; ask the strict judge too when the normal one says ROLLBACK on metrics
    alone (the log patterns are mined once and reused)."""
    snapshot = parse_snapshot(snapshot_doc)
    decision = analyze(snapshot)
    conclusive = None
    if decision.verdict is Verdict.ROLLBACK:
        if decision.guards:
            conclusive = "guard"
        elif analyze(snapshot, level=STRICT, patterns=decision.log_patterns).verdict is Verdict.ROLLBACK:
            conclusive = "strict"
    return Evaluation(end, decision, conclusive)


def watch(
    deployed_at: float,
    verify_s: float,
    fetch: Callable[[float], Fetched],
    *,
    poll_s: float = DEFAULT_POLL_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    judge: Callable[[dict[str, Any], float], Evaluation] = evaluate,
) -> WatchResult:
    """Watch ``[deployed_at, deployed_at + verify_s]``; see the module docstring for the rule.

    ``fetch(end)`` returns the snapshot up to ``end`` (Unix seconds). A fetch that fails before
    the window's end is a note and the next poll tries again; at the window's end it raises
    :class:`WatchError`. ``sleep`` may raise to stop the watch (the engine does when the execution
    is killed)."""
    deadline = deployed_at + max(verify_s, 0.0)
    poll_s = max(poll_s, 0.05)
    notes: list[str] = []
    links: dict[str, str] = {}
    evaluations = 0
    streak = 0
    first = min(deployed_at + poll_s, deadline)
    if clock() < first:
        sleep(first - clock())
    while True:
        end = min(clock(), deadline)
        final = end >= deadline
        try:
            fetched = fetch(end)
        except Exception as exc:  # the source's one-line error
            if final:
                raise WatchError(str(exc)) from None
            _note(notes, f"evaluation at +{end - deployed_at:.0f} s skipped: {exc}")
            sleep(max(0.0, min(poll_s, deadline - clock())))
            continue
        for note in fetched.notes:
            _note(notes, note)
        links.update(fetched.links)
        ev = judge(fetched.snapshot, end)
        evaluations += 1
        conclusive = ev.conclusive is not None and ev.points_after >= EARLY_MIN_POINTS
        streak = streak + 1 if conclusive else 0
        reason = None
        if streak >= CONFIRMATIONS:
            if ev.conclusive == "guard":
                why = "hard guard: " + "; ".join(ev.decision.guards)
            else:
                why = (
                    f"the judge at the strict level (p < {STRICT_ALPHA:g}, |δ| ≥ {STRICT_EFFECT:g}) "
                    "says ROLLBACK"
                )
            reason = f"{why} (conclusive on {streak} consecutive evaluations, {ev.points_after} points)"
        if reason is not None and not final:
            return WatchResult(
                fetched.snapshot, ev.decision, EARLY, reason, evaluations, end - deployed_at, notes, links
            )
        if final:
            reason = (
                f"verification window of {verify_s:g} s over: {ev.decision.verdict.value} "
                f"({ev.decision.severity.value}, confidence {ev.decision.confidence:.2f})"
            )
            return WatchResult(
                fetched.snapshot,
                ev.decision,
                WINDOW_END,
                reason,
                evaluations,
                end - deployed_at,
                notes,
                links,
            )
        sleep(max(0.0, min(poll_s, deadline - clock())))


def _note(notes: list[str], text: str) -> None:
    if text not in notes and len(notes) < MAX_NOTES:
        notes.append(text)
