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

total, simulated = safe(
    reads.read_outcome_provenance, services.store, reads.db_key(services), default=(0, 0), what="outcomes"
)
note = learning.provenance_note(total, simulated)
if note:
    st.info(note, icon=":material/science:")

quality, whatif, export = st.tabs(["Decision quality and calibration", "Policy what-if", "Training data"])

with quality:
    agreement = learning.agreement_by_action(learning.votes_from_learning(frame))
    known = frame["held"].dropna()
    c1, c2, c3 = st.columns(3)
    c1.metric("Recorded decisions", len(frame), border=True)
    c2.metric(
        "Decisions that held",
        fmt.format_percent(known.astype(bool).mean()) if len(known) else "—",
        help=(
            "Of the decisions with a conclusive measured outcome: a remediation that ran and the service "
            f"recovered, or a rollback that did not run and the problem persisted ({len(known)} measured)"
        ),
        border=True,
    )
    humans = int(frame["approval"].isin(["approved", "rejected"]).sum())
    c3.metric(
        "Decided by a human",
        humans,
        help="Approvals approved or rejected (expired ones excluded)",
        border=True,
    )
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Human agreement")
        if agreement.empty:
            st.caption("No human has approved or rejected anything yet.")
        else:
            widgets.text_table(learning.agreement_table(agreement))
            st.caption("How often the people who decided approved what the loop proposed, per action.")
    with right:
        st.subheader("Confidence calibration")
        table = learning.calibration_frame(frame)
        st.plotly_chart(
            charts.calibration_figure(table),
            key="learn_calibration",
            width="stretch",
            config={"displayModeBar": False},
        )
        st.caption(
            "One point per confidence bucket, with its number of decisions (n) and the 95% interval of "
            "its hold rate (Wilson). With a few decisions per bucket the intervals are wide: read the "
            "points one by one, not as a curve. An interval wholly below the diagonal means the loop "
            "was more confident than its record supports."
        )
        if not table.empty:
            st.dataframe(
                learning.calibration_table(table),
                hide_index=True,
                key="learn_calibration_table",
                width="stretch",
            )

with whatif:
    threshold = st.slider(
        "Auto-approve threshold (confidence)",
        0.0,
        1.0,
        float(settings.auto_approve_confidence),
        0.05,
        format="percent",
        key="learn_threshold",
    )
    routed = learning.whatif_frame(frame, settings, threshold)
    if routed.empty:
        st.caption("No decisions to replay.")
    else:
        now_h, new_h = int(routed["now_needs_human"].sum()), int(routed["whatif_needs_human"].sum())
        unreviewed_wrong = int(((~routed["whatif_needs_human"]) & (routed["held"] == False)).sum())  # noqa: E712
        c1, c2, c3 = st.columns(3)
        now_label, whatif_label = learning.whatif_labels(settings.auto_approve_confidence, threshold)
        c1.metric(now_label, now_h, border=True)
        c2.metric(whatif_label, new_h, delta=new_h - now_h, delta_color="off", border=True)
        c3.metric(f"At {threshold:.0%}: would run unreviewed and did not hold", unreviewed_wrong, border=True)
        st.caption(
            "Only LOW-risk actions ever run without a human; HIGH and CRITICAL actions wait whatever "
            "the threshold."
        )

with export:
    st.write(f"{len(frame)} recorded decisions with their human verdicts and outcomes, for fine-tuning:")

    def export_file(kind: str) -> bytes:
        """Built only when the button is clicked (whole records are large)."""
        return training.to_jsonl(training.export_rows(services.store.outcomes.records(), kind)).encode()

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
