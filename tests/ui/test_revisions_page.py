"""The Deployments page's revision history (AppTest): every version of the selected deployment's
service, known-good / known-bad / unknown and why; approvers mark a version (a reason, audited),
viewers only read."""

from __future__ import annotations

import pytest

from console.loop import revisions

pytestmark = pytest.mark.safety


def seed(store, service: str) -> None:
    events = [
        revisions.event(service, "v1.2.2", revisions.BASELINE_HEALTHY, "2026-11-29T10:01:00Z", "quiet",
                        source="probe", execution_id="e1", window=("2026-11-29T10:00:30Z", "10:01")),
        revisions.event(service, "v1.2.3", revisions.ROLLED_BACK, "2026-11-29T10:05:00Z", "rolled back",
                        source="loop", execution_id="e1"),
        revisions.event(service, "v1.2.4", revisions.SEEN, "2026-11-29T10:06:00Z", "announced",
                        source="announcement", execution_id="e2"),
    ]  # fmt: skip
    with store.db.write() as conn:
        store.revisions.add_in(conn, events)


def open_history(at, deployment_id: str) -> None:
    at.switch_page("pages/deployments.py")
    at.query_params["deployment"] = deployment_id
    at.run()
    assert not at.exception


def test_the_history_tab_shows_every_version_and_an_approver_marks_one(app_env, paused_leak, engine):
    from tests.ui.conftest import make_app, texts

    deployment = engine.store.deployments.for_execution(paused_leak.id)
    service = deployment["service"]
    seed(engine.store, service)

    viewer = make_app("vic", "viewer")
    open_history(viewer, str(deployment["id"]))
    table = next(d.value for d in viewer.dataframe if "why" in d.value.columns)
    assert list(table["version"]) == ["v1.2.4", "v1.2.3", "v1.2.2"]
    assert list(table["status"]) == ["unknown", "known-bad", "known-good"]
    assert table["why"].iloc[1] == "rolled back by the loop at 10:05"
    assert any("Known-good now: v1.2.2" in c for c in texts(viewer, "caption"))
    assert not viewer.get("form")  # viewers read only

    at = make_app("alice", "approver")
    open_history(at, str(deployment["id"]))
    at.selectbox(key=f"mark_version_{service}").set_value("v1.2.4")
    at.radio(key=f"mark_as_{service}").set_value("known-good")
    at.text_input(key=f"mark_reason_{service}").input("soaked 2 h in staging")
    next(b for b in at.get("button") if getattr(b, "label", "") == "Mark").click().run()
    assert not at.exception
    assert any(s.startswith("v1.2.4 is known-good: marked known-good by alice") for s in texts(at, "success"))
    table = next(d.value for d in at.dataframe if "why" in d.value.columns)
    assert table.set_index("version").loc["v1.2.4", "status"] == "known-good"
    [audit] = [a for a in engine.store.audit.trail(limit=50) if a["event"] == "revision.marked_good"]
    assert audit["actor"] == "alice" and audit["subject"] == f"{service}@v1.2.4"
