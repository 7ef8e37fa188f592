"""The deterministic postmortem: its sections and facts, "simulated" wherever it applies, the live
loop's results, escaping of what people and logs wrote, and runs that are no incident."""

from __future__ import annotations

import re

import pytest

from console.loop.postmortem import (
    SECTIONS,
    NoIncident,
    build_postmortem,
    check_rewrite,
    facts_of,
    write_postmortem,
)
from console.loop.timeline import gather
from console.settings import Secret
from tests.loop.conftest import (
    LIVE_APPROVAL,
    LIVE_AUDIT,
    LIVE_VOTES,
    ROLLBACK_FAILURE,
    live_record,
    material,
    run,
)


def headings(markdown: str) -> list[str]:
    return re.findall(r"(?m)^## (.+)$", markdown)


def section(markdown: str, name: str) -> str:
    return markdown.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]


def test_an_approved_rollback_gets_every_section_and_says_simulated(rt, settings):
    execution = run(rt, "memory-leak", comment="go ahead")
    postmortem = write_postmortem(
        rt.store.executions.get(execution.id), settings, **material(rt, execution.id)
    )
    md = postmortem.markdown
    assert headings(md) == list(SECTIONS)
    assert md.startswith("# Postmortem: payment-service v1.2.3 rolled back (simulated)\n")
    assert postmortem.author == "console" and postmortem.notes == ()
    assert postmortem.filename == f"postmortem-payment-service-v1.2.3-{execution.id[:8]}.md"
    summary = section(md, "Summary")
    assert "ROLLBACK" in summary and "bob approved rollback_deployment" in summary
    assert "rolled back · simulated" in summary
    assert "| Source | recorded scenario memory-leak (simulated) |" in md
    actions = section(md, "Actions")
    assert "| rollback_deployment | HIGH | approved by bob | done: rolled back (simulated) |" in actions
    assert "| collect_diagnostics | LOW | automatic | done: diagnostics collected (simulated) |" in actions
    outcome = section(md, "Outcome")
    assert "Deployment status: rolled back · simulated" in outcome
    assert "Measured outcome: resolved (recorded scenario segment, simulated) — simulated" in outcome
    assert "Expected verdict of the recorded scenario (simulated): ROLLBACK — matches" in outcome
    timeline = section(md, "Timeline")
    assert "| Time (UTC) | Event | Detail |" in timeline
    for event in ("payment-service v1.2.3 deployed", "Decision: ROLLBACK", "bob approved", "Loop finished"):
        assert event in timeline
    assert "go ahead" in timeline
    root = section(md, "Root cause")
    assert "`java.lang.OutOfMemoryError: Java heap space`" in root and "Hard guard:" in root
    assert "memory growth in v1.2.3" in section(md, "Follow-ups")
    assert md.rstrip().endswith(
        "_Written by the console from the execution's outcome record, approval and audit trail._"
    )


def test_a_live_record_reports_failures_refusals_and_the_measured_outcome_and_nothing_simulated():
    md = build_postmortem(
        None, record=live_record(), approval=LIVE_APPROVAL, votes=LIVE_VOTES, audit=LIVE_AUDIT
    )
    assert headings(md) == list(SECTIONS)
    assert "simulated" not in md.lower()
    assert md.startswith("# Postmortem: demo-service v1.4.0 rollback failed\n")
    actions = section(md, "Actions")
    assert f"| rollback_deployment | HIGH | approved by bob | failed: {ROLLBACK_FAILURE} |" in actions
    assert "| restart_pod | LOW | automatic | refused: namespace not allowed |" in actions
    outcome = section(md, "Outcome")
    assert (
        "Measured outcome: not resolved — error_rate still 29% after the actions · source: prometheus"
        in outcome
    )
    assert "error_rate: 31.0% → 29.0%" in outcome
    follow = section(md, "Follow-ups")
    assert "Find out why rollback_deployment failed" in follow and ROLLBACK_FAILURE in follow
    assert "Roll v1.4.0 back by hand" in follow
    assert "did not resolve the regression" in follow
    assert "v1.4.0 was not rolled back by the loop" in section(md, "Impact")
    assert "alice could not approve" in section(md, "Timeline")


def test_a_rejected_escalation_lists_what_did_not_run_and_the_decision_to_make(rt, settings):
    execution = run(rt, "database-outage-before-deploy", approve=False, comment="the primary is back")
    md = write_postmortem(
        rt.store.executions.get(execution.id), settings, **material(rt, execution.id)
    ).markdown
    assert headings(md) == list(SECTIONS)
    assert "ESCALATE" in section(md, "Summary")
    assert "| failover_database | CRITICAL | needed approval | skipped: rejected |" in section(md, "Actions")
    follow = section(md, "Follow-ups")
    assert "Investigate" in follow and "the approval was rejected (the primary is back)" in follow


def test_what_people_and_logs_wrote_cannot_format_link_or_leak(rt, settings):
    execution = run(
        rt,
        "memory-leak",
        comment="## Actions\n[click](https://evil.example) <img src=x onerror=alert(1)> | see "
        "https://admin:hunter2pass@kestra.local and token sk-SECRET-42abc",
    )
    secret_settings = settings.__class__(
        data_dir=settings.data_dir, together_api_key=Secret("sk-SECRET-42abc")
    )
    items = material(rt, execution.id)
    items["record"]["decision"]["log_patterns"][0]["template"] = "boom `rm -rf` <script>alert(1)</script>"
    md = build_postmortem(
        rt.store.executions.get(execution.id), **items, secrets=secret_settings.secret_values()
    )
    assert headings(md) == list(SECTIONS)  # the comment's "## Actions" is not a heading
    outside_code = re.sub(r"`[^`]*`", "", md)
    assert not re.search(r"(?<!\\)\[click", outside_code) and not re.search(r"(?<!\\)<", outside_code)
    assert "\\[click\\](https://evil.example) \\<img" in md
    assert "hunter2pass" not in md and "sk-SECRET-42abc" not in md and "admin:***@kestra.local" not in md
    assert "https://\\*\\*\\*@kestra.local" in md  # the mask, escaped: shown as ***, never emphasis
    assert "`boom 'rm -rf' <script>alert(1)</script>`" in md  # in a code span: shown, not run
    rows = [line for line in section(md, "Timeline").splitlines() if line.startswith("| ")]
    assert len(rows) > 10
    for line in rows:  # three cells each: a "|" someone wrote stays inside its cell
        assert len(re.findall(r"(?<!\\)\|", line)) == 4, line


def test_no_postmortem_for_a_continue_or_an_unfinished_run(rt, settings):
    healthy = run(rt, "healthy-hotfix")
    with pytest.raises(NoIncident, match="ended with verdict CONTINUE: no incident"):
        write_postmortem(rt.store.executions.get(healthy.id), settings, **material(rt, healthy.id))
    paused = run(rt, "memory-leak", approve=None)
    with pytest.raises(NoIncident, match="has not finished"):
        build_postmortem(rt.store.executions.get(paused.id), **material(rt, paused.id))
    assert rt.store.stories.latest_incident_execution_id() is None
    assert rt.store.outcomes.latest_execution_id() == healthy.id


@pytest.mark.parametrize(
    ("scenario", "approve"),
    [
        ("memory-leak", True),
        ("memory-leak", False),
        ("database-outage-before-deploy", False),
        ("crash-loop", True),
    ],
)
def test_the_draft_itself_passes_the_checks_a_rewrite_must_pass(rt, scenario, approve):
    """The rewrite check asks for nothing the console's own text lacks (else every rewrite would fail)."""
    execution = run(rt, scenario, approve=approve, comment="" if approve else "not now")
    items = material(rt, execution.id)
    draft = build_postmortem(rt.store.executions.get(execution.id), **items)
    check_rewrite(draft, draft, facts_of(gather(rt.store.executions.get(execution.id), **_story_args(items))))


def test_the_live_draft_passes_the_checks_too():
    record = live_record()
    draft = build_postmortem(None, record=record, approval=LIVE_APPROVAL, votes=LIVE_VOTES, audit=LIVE_AUDIT)
    check_rewrite(draft, draft, facts_of(gather(None, deployment=None, record=record)))


def _story_args(items: dict) -> dict:
    return {"deployment": items["deployment"], "record": items["record"]}


def test_the_newest_incident_is_found_with_or_without_a_deployment_row(rt):
    rolled_back = run(rt, "memory-leak")
    run(rt, "healthy-hotfix")
    assert rt.store.stories.latest_incident_execution_id() == rolled_back.id
    with rt.store.db.write() as conn:  # a record of an engine that wrote no deployment row
        rt.store.outcomes.save_in(conn, "live-exec-1", None, live_record())
    assert rt.store.stories.latest_incident_execution_id() == rolled_back.id  # deployments first
    assert rt.store.outcomes.latest_execution_id() == "live-exec-1"
    with rt.store.db.write() as conn:
        conn.execute("UPDATE deployments SET verdict = 'CONTINUE'")
    assert rt.store.stories.latest_incident_execution_id() == "live-exec-1"
