"""Learning: how good the loop's decisions were, how honest its confidence is, what a different
auto-approve threshold would have done, and the training data built from all of it."""

from __future__ import annotations

import streamlit as st

from console.loop import training
from console.presentation import charts, learning
from console.presentation import formatting as fmt
from ui import reads, widgets
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
settings = services.settings
st.title(":material/school: Learning")

if not reads.require_store(services):
    st.stop()


frame = safe(reads.read_learning, services.store, reads.db_key(services), default=None, what="outcomes")
if frame is None or frame.empty:
    widgets.empty_state(
        "No finished runs yet: outcomes appear here once the loop has recorded a few decisions."
    )
    st.stop()

quality, calibration, whatif, export = st.tabs(
    ["Decision quality", "Confidence calibration", "Policy what-if", "Training data"]
)

with quality:
    agreement = learning.agreement_by_action(learning.votes_from_learning(frame))
    known = frame["held"].dropna()
    c1, c2, c3 = st.columns(3)
    c1.metric("Recorded decisions", len(frame), border=True)
    c2.metric(
        "Decisions that held",
        fmt.format_percent(known.astype(bool).mean()) if len(known) else "—",
        help="Held = matched the scenario's expected verdict, or a human approved its actions",
        border=True,
    )
    humans = int(frame["approval"].isin(["approved", "rejected"]).sum())
    c3.metric(
        "Decided by a human",
        humans,
        help="Approvals approved or rejected (expired ones excluded)",
        border=True,
    )
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
                "action": st.column_config.TextColumn("Action"),
                "decisions": st.column_config.NumberColumn("Human decisions"),
                "agreed": st.column_config.NumberColumn("Approved"),
                "agreement": st.column_config.ProgressColumn(
                    "Agreement", min_value=0, max_value=1, format="percent"
                ),
            },
        )

with calibration:
    table = learning.calibration_frame(frame)
    st.plotly_chart(charts.calibration_figure(table), key="learn_calibration", width="stretch")
    st.caption("Points below the diagonal: the loop was more confident than its track record supports.")
    if not table.empty:
        st.dataframe(table, hide_index=True, key="learn_calibration_table")

with whatif:
    threshold = st.slider(
        "Auto-approve threshold (confidence)",
        0.0,
        1.0,
        float(settings.auto_approve_confidence),
        0.05,
        key="learn_threshold",
    )
    routed = learning.whatif_frame(frame, settings, threshold)
    if routed.empty:
        st.caption("No decisions to replay.")
    else:
        now_h, new_h = int(routed["now_needs_human"].sum()), int(routed["whatif_needs_human"].sum())
        unreviewed_wrong = int(((~routed["whatif_needs_human"]) & (routed["held"] == False)).sum())  # noqa: E712
        c1, c2, c3 = st.columns(3)
        c1.metric(f"Need a human at {settings.auto_approve_confidence:.2f}", now_h, border=True)
        c2.metric(
            f"Need a human at {threshold:.2f}", new_h, delta=new_h - now_h, delta_color="off", border=True
        )
        c3.metric("Would run unreviewed and did not hold", unreviewed_wrong, border=True)
        st.caption(
            "Only LOW-risk actions ever run without a human; HIGH and CRITICAL actions wait whatever "
            "the threshold."
        )

with export:
    st.write(f"{len(frame)} recorded decisions with their human verdicts and outcomes, for fine-tuning:")

    def export_file(kind: str) -> bytes:
        """Built only when the button is clicked (whole records are large)."""
        return training.to_jsonl(training.export_rows(services.store.outcome_records(), kind)).encode()

    cols = st.columns(3)
    labels = {"sft": "SFT (Oumi conversations)", "kto": "KTO (unpaired)", "dpo": "DPO (pairs)"}
    for col, kind in zip(cols, training.FORMATS, strict=True):
        col.download_button(
            labels.get(kind, kind.upper()),
            lambda kind=kind: export_file(kind),
            file_name=f"training_{kind}.jsonl",
            mime="application/jsonl",
            key=f"learn_dl_{kind}",
            icon=":material/download:",
            on_click="ignore",
        )
