"""Learning: how good the loop's decisions were, how honest its confidence is, what a different
auto-approve threshold would have done, and the training data built from all of it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import app_support as ui
from console import charts, training, views
from console.models import Decision
from console.policy import plan_actions

services = ui.get_services()
settings = services.settings
st.title(":material/school: Learning")

if not ui.require_store(services):
    st.stop()

records = ui.safe(ui.read_outcomes, services.store, ui.db_key(services), default=[], what="outcomes")
if not records:
    ui.empty_state("No finished runs yet: outcomes appear here once the loop has recorded a few decisions.")
    st.stop()

quality, calibration, whatif, export = st.tabs(
    ["Decision quality", "Confidence calibration", "Policy what-if", "Training data"]
)

with quality:
    agreement = views.agreement_by_action(views.human_votes(records))
    held = [r for r in records if (r.get("outcome") or {}).get("held") is not None]
    c1, c2, c3 = st.columns(3)
    c1.metric("Recorded decisions", len(records), border=True)
    c2.metric(
        "Decisions that held",
        views.format_percent(sum(1 for r in held if r["outcome"]["held"]) / len(held)) if held else "—",
        border=True,
    )
    c3.metric("Human decisions", int(agreement["decisions"].sum()) if not agreement.empty else 0, border=True)
    st.subheader("Human agreement per action")
    if agreement.empty:
        st.caption("No human has approved or rejected anything yet.")
    else:
        st.dataframe(
            agreement,
            hide_index=True,
            width="stretch",
            key="learn_agreement",
            column_config={
                "agreement": st.column_config.ProgressColumn(
                    "Agreement", min_value=0, max_value=1, format="percent"
                )
            },
        )

with calibration:
    frame = views.calibration_frame(views.confidence_records(records))
    st.plotly_chart(charts.calibration_figure(frame), key="learn_calibration", width="stretch")
    st.caption("Points below the diagonal: the loop was more confident than its track record supports.")
    if not frame.empty:
        st.dataframe(frame, hide_index=True, key="learn_calibration_table")

with whatif:
    threshold = st.slider(
        "Auto-approve threshold (confidence)",
        0.0,
        1.0,
        float(settings.auto_approve_confidence),
        0.05,
        key="learn_threshold",
    )
    rows = []
    for rec in records:
        try:
            decision = Decision.from_dict(rec.get("decision") or {})
        except (KeyError, ValueError, TypeError):
            continue
        now_plan = plan_actions(decision, settings)
        new_plan = plan_actions(decision, settings, threshold=threshold)
        rows.append(
            {
                "now_needs_human": now_plan.needs_approval,
                "whatif_needs_human": new_plan.needs_approval,
                "whatif_auto_actions": len(new_plan.auto),
                "held": (rec.get("outcome") or {}).get("held"),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        st.caption("No decisions to replay.")
    else:
        now_h, new_h = int(table["now_needs_human"].sum()), int(table["whatif_needs_human"].sum())
        wrong_auto = int(((~table["whatif_needs_human"]) & (table["held"] == False)).sum())  # noqa: E712
        c1, c2, c3 = st.columns(3)
        c1.metric("Needing a human today", now_h, border=True)
        c2.metric(
            "Needing a human at this threshold", new_h, delta=new_h - now_h, delta_color="off", border=True
        )
        c3.metric("Would run unreviewed and did not hold", wrong_auto, border=True)
        st.caption(
            "Only LOW-risk actions can ever run without a human; HIGH and CRITICAL actions always wait "
            "whatever the threshold."
        )

with export:
    st.write("Decisions with their human verdicts and outcomes, ready for fine-tuning:")
    cols = st.columns(3)
    for col, fmt, label in zip(
        cols, training.FORMATS, ["SFT (Oumi conversations)", "KTO (unpaired)", "DPO (pairs)"], strict=True
    ):
        try:
            data = training.to_jsonl(training.export_rows(records, fmt))
        except Exception as exc:
            ui.log.exception("training export failed")
            col.error(f"{fmt.upper()} export failed: {ui._one_line(exc)}")
            continue
        lines = data.count("\n") + (1 if data and not data.endswith("\n") else 0)
        col.download_button(
            f"{label} · {lines} rows",
            data.encode(),
            file_name=f"training_{fmt}.jsonl",
            mime="application/jsonl",
            key=f"learn_dl_{fmt}",
            icon=":material/download:",
        )
