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


@dataclass
class _Watch:
    deployed_at: float
    verify_s: float
    deadline: float
    poll_s: float
    notes: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    evaluations: int = 0
    extended: bool = False

    def result(self, fetched: Fetched, ev: Evaluation, ended: str, reason: str) -> WatchResult:
        return WatchResult(
            fetched.snapshot, ev.decision, ended, reason, self.evaluations, ev.end - self.deployed_at,
            self.notes, self.links, ev.samples_after,
        )  # fmt: skip

    def window_end(self, fetched: Fetched, ev: Evaluation) -> WatchResult:
        d = ev.decision
        reason = (
            f"verification window of {self.verify_s:g} s over: {d.verdict.value} "
            f"({d.severity.value}, confidence {d.confidence:.2f}; "
            f"{ev.samples_after} real samples since the deploy)"
        )
        if ev.insufficient:
            reason += "; " + d.reasoning.split("; ")[0]
        return self.result(fetched, ev, WINDOW_END, reason)

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < MAX_NOTES:
            self.notes.append(text)


def watch(
    deployed_at: float,
    verify_s: float,
    fetch: Callable[[float], Fetched],
    *,
    poll_s: float = DEFAULT_POLL_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    judge: Callable[[dict[str, Any], float], Evaluation] = assess,
    wait_for_samples: bool = True,
) -> WatchResult:
    """Watch ``[deployed_at, deployed_at + verify_s]``; see the module docstring for the rule.

    ``fetch(end)`` returns the snapshot up to ``end`` (Unix seconds). A fetch that fails before
    the window's end is a note and the next poll tries again; at the window's end it raises
    :class:`WatchError`. ``sleep`` may raise to stop the watch (the engine does when the execution
    is killed). ``wait_for_samples`` False: no bounded wait for missing samples (a service with no
    metric source: none will come)."""
    w = _Watch(deployed_at, verify_s, deployed_at + max(verify_s, 0.0), max(poll_s, 0.05))
    first = min(deployed_at + w.poll_s, w.deadline)
    if clock() < first:
        sleep(first - clock())
    while True:
        end = min(clock(), w.deadline)
        final = end >= w.deadline
        try:
            fetched = fetch(end)
        except Exception as exc:  # the source's one-line error
            if final:
                raise WatchError(str(exc)) from None
            w.note(f"evaluation at +{end - deployed_at:.0f} s skipped: {exc}")
            sleep(max(0.0, min(w.poll_s, w.deadline - clock())))
            continue
        for note in fetched.notes:
            w.note(note)
        w.links.update(fetched.links)
        ev = judge(fetched.snapshot, end)
        w.evaluations += 1
        if ev.conclusive is not None and not final:
            return w.result(fetched, ev, EARLY, ev.why)
        extra = INSUFFICIENT_WAIT_FRACTION * verify_s
        recent = clock() - w.deadline < extra  # samples may still come; for an old window they will not
        if final and wait_for_samples and ev.insufficient and not w.extended and verify_s > 0 and recent:
            w.extended = True
            w.deadline += extra
            w.note(
                f"not enough evidence at the window's end: waiting up to {extra:g} s more for real samples"
            )
            sleep(max(0.0, min(w.poll_s, w.deadline - clock())))
            continue
        if final:
            return w.window_end(fetched, ev)
        sleep(max(0.0, min(w.poll_s, w.deadline - clock())))
