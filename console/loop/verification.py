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

Nothing here sleeps or reads the clock directly. :func:`look` is one look at ``now``: it returns the
result, or a :class:`Wait` (when to look again, and the small :class:`WatchState` to look with), so
an engine persists the wait instead of holding a worker; :func:`watch` loops over it with injected
``clock`` and ``sleep``, so the rule is tested without waiting. Fetching is injected too (the
``collect`` step gives one that reads the service's configured sources). A source that fails at the
window's end is waited for up to a grace, then :class:`TelemetryLost`.
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
TELEMETRY_LOST = "telemetry lost"
"""How a watch ended when the source failed at the window's end and stayed down past the grace
(the ``collect`` step's ``verification.ended``; the decision then escalates)."""


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


@dataclass
class WatchState:
    """What a watch carries from one look to the next; the engines persist it between looks (it is
    small: counts, at most :data:`MAX_NOTES` notes, the graph links)."""

    evaluations: int = 0
    streak: int = 0
    notes: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    lost_since: float | None = None
    """When the source began failing (Unix seconds), while it still does."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluations": self.evaluations,
            "streak": self.streak,
            "notes": list(self.notes),
            "links": dict(self.links),
            "lost_since": self.lost_since,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> WatchState:
        """A state read back (anything unusable starts afresh rather than failing the run)."""
        if not isinstance(doc, dict):
            return cls()
        notes = [n for n in doc.get("notes") or [] if isinstance(n, str)][:MAX_NOTES]
        links = doc.get("links") if isinstance(doc.get("links"), dict) else {}
        lost = doc.get("lost_since")
        counts = [doc.get("evaluations"), doc.get("streak")]
        evaluations, streak = (c if isinstance(c, int) and not isinstance(c, bool) else 0 for c in counts)
        return cls(
            evaluations=evaluations,
            streak=streak,
            notes=notes,
            links={str(k): str(v) for k, v in links.items()},
            lost_since=float(lost) if isinstance(lost, int | float) and not isinstance(lost, bool) else None,
        )


@dataclass(frozen=True)
class Wait:
    """A look that is not the last: look again at ``until`` (Unix seconds) with ``state``."""

    until: float
    state: WatchState
    reason: str
    """What the watch waits for, in a few words (shown while the run waits)."""
    urgent: bool = False
    """The next look may decide (the judge already says ROLLBACK, or it is the window's end)."""


class TelemetryLost(WatchError):
    """The source failed at the window's end and did not come back within the grace."""

    def __init__(self, since: float, detail: str) -> None:
        super().__init__(detail)
        self.since = since
        self.detail = detail


def look(
    deployed_at: float,
    verify_s: float,
    fetch: Callable[[float], Fetched],
    state: WatchState | None = None,
    *,
    now: float,
    poll_s: float = DEFAULT_POLL_S,
    grace_s: float = 0.0,
    judge: Callable[[dict[str, Any], float], Evaluation] = evaluate,
) -> WatchResult | Wait:
    """One look at ``[deployed_at, deployed_at + verify_s]`` at ``now``; see the module docstring
    for the rule. Returns the result, or when to look again.

    ``fetch(end)`` returns the snapshot up to ``end`` (Unix seconds). A fetch that fails before the
    window's end is a note and the next look tries again; at the window's end the watch waits for
    the source up to ``grace_s`` after it began failing, then raises :class:`TelemetryLost`."""
    state = state or WatchState()
    deadline = deployed_at + max(verify_s, 0.0)
    poll_s = max(poll_s, 0.05)
    first = min(deployed_at + poll_s, deadline)
    if now < first:
        ahead = deployed_at - now
        reason = (
            f"the deploy is announced {ahead:.0f} s ahead: first look {poll_s:g} s after it"
            if ahead > 0
            else "the first look after the deploy"
        )
        return Wait(first, state, reason)
    end = min(now, deadline)
    final = end >= deadline
    try:
        fetched = fetch(end)
    except Exception as exc:  # the source's one-line error
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if state.lost_since is None:
            state.lost_since = now
        if not final:
            _note(state.notes, f"evaluation at +{end - deployed_at:.0f} s skipped: {detail}")
            return Wait(min(now + poll_s, deadline), state, f"the next look (the source failed: {detail})")
        give_up = state.lost_since + max(grace_s, 0.0)
        if now >= give_up:
            raise TelemetryLost(state.lost_since, detail) from None
        return Wait(
            min(now + poll_s, give_up),
            state,
            f"telemetry to come back (failing since +{state.lost_since - deployed_at:.0f} s: {detail})",
        )
    state.lost_since = None
    for note in fetched.notes:
        _note(state.notes, note)
    state.links.update(fetched.links)
    ev = judge(fetched.snapshot, end)
    state.evaluations += 1
    conclusive = ev.conclusive is not None and ev.points_after >= EARLY_MIN_POINTS
    state.streak = state.streak + 1 if conclusive else 0
    reason = None
    if state.streak >= CONFIRMATIONS:
        if ev.conclusive == "guard":
            why = "hard guard: " + "; ".join(ev.decision.guards)
        else:
            why = (
                f"the judge at the strict level (p < {STRICT_ALPHA:g}, |δ| ≥ {STRICT_EFFECT:g}) says ROLLBACK"
            )
        reason = f"{why} (conclusive on {state.streak} consecutive evaluations, {ev.points_after} points)"
    if reason is not None and not final:
        return WatchResult(
            fetched.snapshot,
            ev.decision,
            EARLY,
            reason,
            state.evaluations,
            end - deployed_at,
            state.notes,
            state.links,
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
            state.evaluations,
            end - deployed_at,
            state.notes,
            state.links,
        )
    following = min(now + poll_s, deadline)
    urgent = ev.decision.verdict is Verdict.ROLLBACK or following >= deadline
    return Wait(following, state, "the next look at the verification window", urgent)


def watch(
    deployed_at: float,
    verify_s: float,
    fetch: Callable[[float], Fetched],
    *,
    poll_s: float = DEFAULT_POLL_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    judge: Callable[[dict[str, Any], float], Evaluation] = evaluate,
    grace_s: float = 0.0,
) -> WatchResult:
    """The whole watch in one call: :func:`look` until it decides, sleeping in between (the engines
    persist a :class:`Wait` instead). ``sleep`` may raise to stop the watch."""
    state = WatchState()
    while True:
        out = look(
            deployed_at, verify_s, fetch, state, now=clock(), poll_s=poll_s, grace_s=grace_s, judge=judge
        )
        if isinstance(out, WatchResult):
            return out
        state = out.state
        sleep(max(0.0, out.until - clock()))


def _note(notes: list[str], text: str) -> None:
    if text not in notes and len(notes) < MAX_NOTES:
        notes.append(text)
