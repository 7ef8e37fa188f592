"""Watching a live verification window: re-analyse as samples arrive, decide as soon as the evidence
is conclusive, at the latest when the window ends.

After a deploy at ``deployed_at`` the window runs until ``deployed_at + verify_s``. Every
``poll_s`` seconds the snapshot over ``[deployed_at - baseline_s, now]`` is fetched again and
judged by :func:`assess`, a pure function of the fetched window (a scheduler may call it on its own:
"is this window conclusive yet?"). The watch ends:

- **early**, with a ROLLBACK, when the window is *conclusive* (the rule, in one place): the rules
  analyzer says ROLLBACK, the window holds at least ``EARLY_MIN_SAMPLES`` real samples after the
  deploy, and the evidence the verdict rests on holds at any stopping time:

  * a **hard guard** fired (error rate, memory, crash loop; see ``console/analysis/metrics.py``);
  * **counts**: the user-facing regressions are always-valid tests on requests counted against
    traffic, discovered by Benjamini–Hochberg and still there in the last half of the window
    (:mod:`console.analysis.traffic`, :mod:`console.analysis.sequential`);
  * a **trend** projected to its limit, its interval taken at the alpha spent at that sample
    (:mod:`console.analysis.trends`);
  * **points** otherwise (a service without counts): the judge says ROLLBACK again at the
    significance spent at the ``n``-th real sample, ``alpha * 6 / (pi^2 n^2)``, which keeps the
    error of stopping at any sample below ``alpha``.

  The minimum of real samples is persistence, not significance: a burst of a few seconds right
  after a rollout (cold caches) must fill the last half of the window to count;

- at the **window's end** otherwise, with whatever the judge says then. CONTINUE and ESCALATE are
  only ever given there. When the window's end still lacks evidence (too few real samples of the
  metrics that matter: Prometheus down, the target gone) the watch waits up to
  ``INSUFFICIENT_WAIT_FRACTION`` of the window more (when the window is recent: samples of an old
  window will not come), then the verdict is the analyzer's ESCALATE saying what is missing.

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
from console.analysis.metrics import ALPHA, MIN_EFFECT, Level
from console.analysis.sequential import spent_alpha
from console.analysis.verdict import USER_FACING
from console.domain.models import Decision, Verdict
from console.domain.snapshot import parse_snapshot

EARLY_MIN_SAMPLES = 10
"""Real samples after the deploy (of the metric with most) before a window can end early."""
INSUFFICIENT_WAIT_FRACTION = 0.5
"""At the window's end without enough evidence, wait up to this fraction of the window more."""
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
    """Why this evaluation is conclusive for a ROLLBACK (``guard``, ``counts``, ``trend``,
    ``points``), else None."""
    why: str = ""
    """The conclusive evidence in words."""

    @property
    def samples_after(self) -> int:
        """Real samples after the deploy (of the metric with most)."""
        return max((m.after_points for m in self.decision.metrics), default=0)

    @property
    def insufficient(self) -> bool:
        return self.decision.rule == "insufficient-evidence"


def _regressed(decision: Decision) -> list:
    return [
        m for m in decision.metrics if m.classification.value in ("High", "Low") and m.name in USER_FACING
    ]


def _kind(decision: Decision) -> str | None:
    """Which anytime-valid evidence a ROLLBACK rests on (None: points, or nothing conclusive)."""
    if decision.rule == "hard-guard":
        return "guard"
    if decision.rule == "resource-climbs-to-limit":
        return "trend"
    regressed = _regressed(decision)
    if (
        decision.rule == "user-facing-regression"
        and regressed
        and all(m.basis == "counts" for m in regressed)
    ):
        return "counts"
    return None


def _why(kind: str, decision: Decision, samples: int) -> str:
    if kind == "guard":
        head = "hard guard: " + "; ".join(decision.guards)
    elif kind == "trend":
        trends = [m for m in decision.metrics if m.basis == "trend" and m.projection]
        head = "trend: " + "; ".join(f"{m.name} {m.projection}" for m in trends)
    elif kind == "counts":
        head = "always-valid count test: " + "; ".join(
            m.reason for m in _regressed(decision) if m.basis == "counts"
        )
    else:
        head = f"the judge at the significance spent at this sample (p < {spent_alpha(ALPHA, samples):.2g})"
    return f"{head} (conclusive after {samples} real samples since the deploy)"


def assess(snapshot_doc: dict[str, Any], end: float) -> Evaluation:
    """Is this window conclusive yet? A pure function of the fetched window: the rules analyzer's
    decision, and the kind of conclusive evidence when it is a ROLLBACK that may end the window
    early (see the module docstring)."""
    snapshot = parse_snapshot(snapshot_doc)
    decision = analyze(snapshot)
    if decision.verdict is not Verdict.ROLLBACK:
        return Evaluation(end, decision, None)
    samples = max((m.after_points for m in decision.metrics), default=0)
    if samples < EARLY_MIN_SAMPLES:
        return Evaluation(end, decision, None)
    kind = _kind(decision)
    if kind is None:
        spent = Level(alpha=spent_alpha(ALPHA, samples), min_effect=MIN_EFFECT)
        if analyze(snapshot, level=spent, patterns=decision.log_patterns).verdict is Verdict.ROLLBACK:
            kind = "points"
    if kind is None:
        return Evaluation(end, decision, None)
    return Evaluation(end, decision, kind, _why(kind, decision, samples))


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
    samples_after: int = 0
    """Real samples after the deploy the decision rests on."""

    def to_dict(self) -> dict[str, Any]:
        """The ``verification`` part of the collect step's output."""
        return {
            "ended": self.ended,
            "reason": self.reason,
            "evaluations": self.evaluations,
            "elapsed_s": round(self.elapsed_s, 3),
            "samples_after": self.samples_after,
            "rule": self.decision.rule,
            "notes": list(self.notes),
            "links": dict(self.links),
        }


def _window_end_reason(verify_s: float, ev: Evaluation) -> str:
    d = ev.decision
    reason = (
        f"verification window of {verify_s:g} s over: {d.verdict.value} "
        f"({d.severity.value}, confidence {d.confidence:.2f}; "
        f"{ev.samples_after} real samples since the deploy)"
    )
    if ev.insufficient:
        reason += "; " + d.reasoning.split("; ")[0]
    return reason


@dataclass
class WatchState:
    """What a watch carries from one look to the next; the engines persist it between looks (it is
    small: counts, at most :data:`MAX_NOTES` notes, the graph links)."""

    evaluations: int = 0
    notes: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    lost_since: float | None = None
    """When the source began failing (Unix seconds), while it still does."""
    extended: bool = False
    """The window's end lacked evidence and the watch waits a bounded time more for samples."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluations": self.evaluations,
            "notes": list(self.notes),
            "links": dict(self.links),
            "lost_since": self.lost_since,
            "extended": self.extended,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> WatchState:
        """A state read back (anything unusable starts afresh rather than failing the run)."""
        if not isinstance(doc, dict):
            return cls()
        notes = [n for n in doc.get("notes") or [] if isinstance(n, str)][:MAX_NOTES]
        links = doc.get("links") if isinstance(doc.get("links"), dict) else {}
        lost = doc.get("lost_since")
        evaluations = doc.get("evaluations")
        return cls(
            evaluations=evaluations
            if isinstance(evaluations, int) and not isinstance(evaluations, bool)
            else 0,
            notes=notes,
            links={str(k): str(v) for k, v in links.items()},
            lost_since=float(lost) if isinstance(lost, int | float) and not isinstance(lost, bool) else None,
            extended=doc.get("extended") is True,
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


def _failed_fetch(
    exc: Exception,
    state: WatchState,
    *,
    deployed_at: float,
    end: float,
    now: float,
    final: bool,
    deadline: float,
    poll_s: float,
    grace_s: float,
) -> Wait:
    """A fetch that failed: before the window's end a note, and the next look tries again; at the
    window's end a wait for the source up to ``grace_s`` after it began failing, then
    :class:`TelemetryLost`."""
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
    )  # fmt: skip


def look(
    deployed_at: float,
    verify_s: float,
    fetch: Callable[[float], Fetched],
    state: WatchState | None = None,
    *,
    now: float,
    poll_s: float = DEFAULT_POLL_S,
    grace_s: float = 0.0,
    judge: Callable[[dict[str, Any], float], Evaluation] = assess,
    wait_for_samples: bool = True,
) -> WatchResult | Wait:
    """One look at ``[deployed_at, deployed_at + verify_s]`` at ``now``; see the module docstring
    for the rule. Returns the result, or when to look again.

    ``fetch(end)`` returns the snapshot up to ``end`` (Unix seconds); a failing source is waited for
    (:func:`_failed_fetch`). ``wait_for_samples`` False: no bounded wait for missing samples (a
    service with no metric source: none will come)."""
    state = state or WatchState()
    poll_s = max(poll_s, 0.05)
    extra = INSUFFICIENT_WAIT_FRACTION * verify_s
    deadline = deployed_at + max(verify_s, 0.0) + (extra if state.extended else 0.0)
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
        return _failed_fetch(
            exc, state, deployed_at=deployed_at, end=end, now=now, final=final, deadline=deadline,
            poll_s=poll_s, grace_s=grace_s,
        )  # fmt: skip
    state.lost_since = None
    for note in fetched.notes:
        _note(state.notes, note)
    state.links.update(fetched.links)
    ev = judge(fetched.snapshot, end)
    state.evaluations += 1

    def result(ended: str, reason: str) -> WatchResult:
        return WatchResult(
            fetched.snapshot, ev.decision, ended, reason, state.evaluations, ev.end - deployed_at,
            state.notes, state.links, ev.samples_after,
        )  # fmt: skip

    if ev.conclusive is not None and not final:
        return result(EARLY, ev.why)
    recent = now - deadline < extra  # samples may still come; for an old window they will not
    if final and wait_for_samples and ev.insufficient and not state.extended and verify_s > 0 and recent:
        state.extended = True
        _note(
            state.notes,
            f"not enough evidence at the window's end: waiting up to {extra:g} s more for real samples",
        )
        return Wait(min(now + poll_s, deadline + extra), state, "real samples the window still lacks", True)
    if final:
        return result(WINDOW_END, _window_end_reason(verify_s, ev))
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
    judge: Callable[[dict[str, Any], float], Evaluation] = assess,
    grace_s: float = 0.0,
    wait_for_samples: bool = True,
) -> WatchResult:
    """The whole watch in one call: :func:`look` until it decides, sleeping in between (the engines
    persist a :class:`Wait` instead). ``sleep`` may raise to stop the watch."""
    state = WatchState()
    while True:
        out = look(
            deployed_at, verify_s, fetch, state, now=clock(), poll_s=poll_s, grace_s=grace_s, judge=judge,
            wait_for_samples=wait_for_samples,
        )  # fmt: skip
        if isinstance(out, WatchResult):
            return out
        state = out.state
        sleep(max(0.0, out.until - clock()))


def _note(notes: list[str], text: str) -> None:
    if text not in notes and len(notes) < MAX_NOTES:
        notes.append(text)
