"""Learning analytics: how often humans agreed with the loop, how honest its confidence is, what
another auto-approve threshold would have routed, from the Learning read model's rows.

Pure functions: the rows come from :meth:`console.storage.Store.outcomes.learning_rows`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from console.domain.models import Decision, RecommendedAction, Severity, Verdict
from console.loop.policy import plan_actions
from console.presentation.formatting import field
from console.settings import Settings


def agreement_by_action(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """How often humans agreed with the loop, per action type.

    A record is one decided approval: ``action`` and ``approved`` (True when the human accepted
    what the loop proposed).
    """
    counts: dict[str, list[int]] = {}
    for rec in records:
        if type(rec) is dict:  # the common case (votes_from_learning): no field() call per row
            action, approved = rec.get("action") or "unknown", rec.get("approved")
        else:
            action, approved = field(rec, "action", "") or "unknown", field(rec, "approved")
        if approved is None:
            continue
        tally = counts.setdefault(str(action), [0, 0])
        tally[0] += 1 if approved else 0
        tally[1] += 1
    rows = [
        {"action": a, "decisions": t, "agreed": g, "agreement": g / t if t else None}
        for a, (g, t) in sorted(counts.items())
    ]
    return pd.DataFrame(rows, columns=["action", "decisions", "agreed", "agreement"])


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): honest with a handful of points,
    where the normal approximation gives intervals past 0 or 1."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def calibration_frame(records: Iterable[Mapping[str, Any]] | pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Stated confidence vs how often the decision held, in equal-width confidence bins, with each
    bin's count and the 95% Wilson interval of its hold rate (``low``, ``high``).

    Each record (or DataFrame row) has ``confidence`` in [0, 1] and ``held`` (bool: the outcome
    confirmed the verdict); records missing either are left out.
    """
    if isinstance(records, pd.DataFrame):
        data = records[["confidence", "held"]].dropna()
    else:
        data = pd.DataFrame(
            [{"confidence": field(r, "confidence"), "held": field(r, "held")} for r in records],
            columns=["confidence", "held"],
        ).dropna()
    edges = [i / bins for i in range(bins + 1)]
    rows = []
    if not data.empty:
        conf = np.clip(data["confidence"].to_numpy(dtype=float), 0.0, 1.0)
        held = data["held"].to_numpy(dtype=bool)
        index = np.minimum((conf * bins).astype(int), bins - 1)
        for i in range(bins):
            mask = index == i
            n = int(mask.sum())
            if n:
                low, high = wilson_interval(int(held[mask].sum()), n)
                rows.append(
                    {
                        "bin": f"{edges[i]:.1f}–{edges[i + 1]:.1f}",
                        "stated": float(conf[mask].mean()),
                        "held": float(held[mask].mean()),
                        "n": n,
                        "low": low,
                        "high": high,
                    }
                )
    return pd.DataFrame(rows, columns=["bin", "stated", "held", "n", "low", "high"])


def agreement_table(agreement: pd.DataFrame) -> pd.DataFrame:
    """Human agreement per action as text that fits a narrow column: ``3 of 3 approved (100%)``."""
    rows = [
        {
            "action": str(r["action"]),
            "humans approved": f"{int(r['agreed'])} of {int(r['decisions'])}"
            + (f" ({r['agreement'] * 100:.0f}%)" if r["agreement"] is not None else ""),
        }
        for r in agreement.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=["action", "humans approved"])


def calibration_table(calibration: pd.DataFrame) -> pd.DataFrame:
    """The calibration buckets as people read them: ``80–100%``, stated and held in %, the count,
    and the interval of the hold rate."""
    rows = [
        {
            "confidence bucket": "–".join(f"{float(edge) * 100:.0f}" for edge in str(r["bin"]).split("–"))
            + "%",
            "decisions": int(r["n"]),
            "stated (mean)": f"{r['stated'] * 100:.0f}%",
            "held": f"{r['held'] * 100:.0f}%",
            "95% interval": f"{r['low'] * 100:.0f}–{r['high'] * 100:.0f}%",
        }
        for r in calibration.to_dict("records")
    ]
    return pd.DataFrame(
        rows, columns=["confidence bucket", "decisions", "stated (mean)", "held", "95% interval"]
    )


def whatif_labels(current: float, threshold: float) -> tuple[str, str]:
    """The two what-if cards' labels, never the same text (the slider may sit on today's value)."""
    now = f"Need a human today (threshold {current:.0%})"
    if abs(threshold - current) < 1e-9:
        return now, f"Need a human at {threshold:.0%} (the same threshold)"
    return now, f"Need a human at {threshold:.0%}"


LEARNING_COLUMNS = [
    "execution_id",
    "seq",
    "verdict",
    "confidence",
    "actions",
    "approval_actions",
    "approval",
    "held",
]


def learning_frame(rows: Iterable[tuple[str, int, str | None, str | None]]) -> pd.DataFrame:
    """The Learning page's frame from :meth:`Store.outcomes.learning_rows` (execution id, seq, the few
    learning fields as JSON text, the final approval status when a human decided).

    Only verdict, confidence, action names, the approval status (the approvals table wins over the
    record) and whether the decision held are kept: decoding whole records (decision with every
    metric and log pattern) took about 2 s and 35 MB for 10,000 runs. ``seq`` is kept for
    incremental refreshes (read again with ``after`` = the largest seq seen).
    """
    records = []
    for execution_id, seq, fields_text, final_status in rows:
        try:
            verdict, confidence, actions, approval_actions, status, held = json.loads(fields_text or "")
        except (TypeError, ValueError):
            continue
        records.append(
            {
                "execution_id": execution_id,
                "seq": seq,
                "verdict": verdict or "",
                "confidence": float(confidence) if confidence is not None else None,
                "actions": _names(actions),
                "approval_actions": _names(approval_actions),
                "approval": final_status or status or "",
                "held": None if held is None else bool(held),
            }
        )
    return pd.DataFrame(records, columns=LEARNING_COLUMNS)


def merge_learning(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Add freshly read rows to a cached learning frame (a re-recorded execution replaces its row)."""
    if old is None or old.empty:
        return new.reset_index(drop=True)
    if new.empty:
        return old
    merged = pd.concat([old, new], ignore_index=True)
    return merged.drop_duplicates("execution_id", keep="last").reset_index(drop=True)


def _names(items: Any) -> list[str]:
    """Action names from decoded JSON (plain dicts): called for every outcome row, so kept direct."""
    if not isinstance(items, list):
        return []
    return [str(i["name"]) for i in items if isinstance(i, dict) and i.get("name")]


def votes_from_learning(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One (action, approved) row per action a human approved or rejected."""
    decided = frame[frame["approval"].isin(("approved", "rejected"))]
    out = []
    for approval, names in zip(
        decided["approval"].tolist(), decided["approval_actions"].tolist(), strict=True
    ):
        approved = approval == "approved"
        out.extend({"action": n, "approved": approved} for n in names)
    return out


def whatif_frame(frame: pd.DataFrame, settings: Settings, threshold: float) -> pd.DataFrame:
    """Each past decision routed by the policy now and at ``threshold`` (console.loop.policy.plan_actions)."""

    def route(names: tuple[str, ...], confidence: float, limit: float | None) -> tuple[bool, int]:
        decision = Decision(
            verdict=Verdict.CONTINUE,
            severity=Severity.LOW,
            confidence=confidence,
            summary="",
            root_cause="",
            actions=[RecommendedAction.from_dict({"name": n, "risk": "LOW"}) for n in names],
            metrics=[],
            log_patterns=[],
            analyzer="rules",
        )
        plan = plan_actions(decision, settings, threshold=limit)
        return plan.needs_approval, len(plan.auto)

    # The plan depends on the action names and on which side of the threshold the confidence
    # falls, so one plan_actions call per distinct (names, side) gives every row exactly; the rows
    # are then filled per group with numpy (a Python loop over 100k decisions took ~300 ms).
    columns = ["now_needs_human", "whatif_needs_human", "whatif_auto", "held"]
    confidence = pd.to_numeric(frame["confidence"], errors="coerce")
    usable = frame[
        confidence.notna().to_numpy() & frame["verdict"].isin(list(Verdict.__members__)).to_numpy()
    ]
    if usable.empty:
        return pd.DataFrame([], columns=columns)
    conf = confidence[usable.index].to_numpy(dtype=float)
    codes, uniques = pd.factorize(usable["actions"].map(tuple))
    current = float(settings.auto_approve_confidence)
    results: dict[str, np.ndarray] = {}
    for label, limit in (("now", current), ("whatif", threshold)):
        needs = np.zeros(len(conf), dtype=bool)
        auto = np.zeros(len(conf), dtype=int)
        above = conf >= limit
        for code, names in enumerate(uniques):
            in_group = codes == code
            for side in (False, True):
                rows = np.flatnonzero(in_group & (above == side))
                if len(rows):
                    needs[rows], auto[rows] = route(tuple(names), float(conf[rows[0]]), limit)
        results[f"{label}_needs"], results[f"{label}_auto"] = needs, auto
    return pd.DataFrame(
        {
            "now_needs_human": results["now_needs"],
            "whatif_needs_human": results["whatif_needs"],
            "whatif_auto": results["whatif_auto"],
            "held": usable["held"].tolist(),
        },
        columns=columns,
    )


def provenance_note(total: int, simulated: int) -> str | None:
    """What the Learning figures rest on, when any of it is simulated (None when all is measured on
    real services): a scenario's actions are simulated and its outcome measured on its file's
    recorded post-action segment, so its 'held' is a replay, not evidence from production."""
    if total <= 0 or simulated <= 0:
        return None
    if simulated >= total:
        return (
            f"All {total} recorded decisions come from demo scenarios: their actions were simulated and "
            "their outcomes measured on recorded segments (simulated), not on a running service."
        )
    return (
        f"{simulated} of {total} recorded decisions come from demo scenarios (simulated actions, outcomes "
        f"measured on recorded segments); {total - simulated} were measured on running services."
    )
