"""The postmortem's Impact, Root cause, Outcome and Follow-ups word for word, for a live rollback that
failed and for an escalated, simulated run whose approval expired; and each fact whose loss makes the
rewrite check reject an LLM's rewrite, by the reason it gives."""

from __future__ import annotations

import pytest

from console.loop.narrative import LLMFailure
from console.loop.postmortem import build_postmortem, check_rewrite, facts_of
from console.loop.timeline import gather
from tests.loop.conftest import LIVE_APPROVAL, LIVE_AUDIT, LIVE_VOTES, live_record


def section(markdown: str, name: str) -> list[str]:
    return markdown.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()


def test_a_failed_rollback_is_told_section_by_section() -> None:
    md = build_postmortem(
        None, record=live_record(), approval=LIVE_APPROVAL, votes=LIVE_VOTES, audit=LIVE_AUDIT
    )
    assert section(md, "Impact") == [
        "About a third of requests fail.",
        "",
        "| Metric | What changed after the deploy | Hard guard |",
        "|---|---|---|",
        "| error_rate | 0.4% → 31.0% | error_rate 31.0% ≥ 20% (baseline 0.4%) |",
        "| latency_p95_ms | 120 ms → 480 ms | — |",
        "",
        "- v1.4.0 was not rolled back by the loop: it still runs unless a human acted.",
    ]
    assert section(md, "Root cause")[2:] == [
        "Evidence:",
        "",
        "- Hard guard: error_rate 31.0% ≥ 20% (baseline 0.4%)",
        "- latency_p95_ms: 120 ms → 480 ms",
        "- new ERROR log pattern (out_of_memory), 0 → 41 lines: `out of memory: <*>`",
        "",
        "Analysis by rules.",
    ]
    assert section(md, "Outcome") == [
        "- Deployment status: rollback failed",
        "- Measured outcome: not resolved — error_rate still 29% after the actions · source: prometheus",
        "- Measured over 2026-11-29T17:02:15Z → 2026-11-29T17:02:35Z",
        "  - error_rate: 31.0% → 29.0%",
        "- Approval: approved by bob — “roll it back”",
    ]
    assert section(md, "Follow-ups") == [
        "- [ ] Roll v1.4.0 back by hand, or check that it is rolled back: the loop's rollback_deployment "
        "failed.",
        "- [ ] Fix the regression in v1.4.0 before deploying it again; v1.3.2 is the known good version.",
        "- [ ] Find the memory growth in v1.4.0 (heap dumps, allocation profile) and add a soak test that "
        "watches memory before the next release.",
        "- [ ] Catch this before production: add pre-release checks on what the hard guards caught "
        "(error_rate 31.0% ≥ 20% (baseline 0.4%)).",
        "- [ ] Find out why rollback_deployment failed (deployer answered 503: the new instance did not "
        "become ready) and fix its executor or runbook.",
        "- [ ] Find out why restart_pod was refused (namespace not allowed) and fix its executor or runbook.",
        "- [ ] The actions did not resolve the regression (error_rate still 29% after the actions · source: "
        "prometheus): keep investigating.",
    ]


def escalated_record() -> dict:
    record = live_record()
    panic = {"template": "panic: nil map", "level": "fatal", "status": "surging", "category": "panic",
             "count_before": 2, "count_after": 9}  # fmt: skip
    quiet = {"template": "ok", "level": "INFO", "status": "new"}
    record["decision"] = {
        **record["decision"],
        "verdict": "ESCALATE",
        "analyzer": "llm:model-x",
        "rules_verdict": "ROLLBACK",
        "log_patterns": [*record["decision"]["log_patterns"], panic, quiet],
    }
    record["executed"] = [{**record["executed"][0], "status": "simulated"}]
    record["measured"] = None
    record["scenario"] = {"id": "memory-leak", "expected_verdict": "ROLLBACK"}
    return record


def test_an_escalated_simulated_run_whose_approval_expired_is_told_section_by_section() -> None:
    expired = {**LIVE_APPROVAL, "status": "expired", "decided_by": None, "comment": None}
    md = build_postmortem(None, record=escalated_record(), approval=expired, votes=[], audit=LIVE_AUDIT)
    assert section(md, "Root cause")[-5:] == [
        "- latency_p95_ms: 120 ms → 480 ms",
        "- new ERROR log pattern (out_of_memory), 0 → 41 lines: `out of memory: <*>`",
        "- surging fatal log pattern (panic), 2 → 9 lines: `panic: nil map`",
        "",
        "Analysis by llm:model-x (the rules' verdict: ROLLBACK).",
    ]
    assert section(md, "Outcome") == [
        "- Deployment status: rollback failed · simulated",
        "- Measured outcome: not measured — no measured outcome in the record (it predates outcome "
        "verification)",
        "- Expected verdict of the recorded scenario (simulated): ROLLBACK — does not match ESCALATE",
        "- Approval: expired by —",
    ]
    assert section(md, "Follow-ups") == [
        "- [ ] Investigate demo-service by hand: the loop escalated instead of attributing the regression "
        "to v1.4.0.",
        "- [ ] Find the memory growth in v1.4.0 (heap dumps, allocation profile) and add a soak test that "
        "watches memory before the next release.",
        "- [ ] Fix the crash in v1.4.0 (stack traces in the collected logs) and cover it with a test.",
        "- [ ] Catch this before production: add pre-release checks on what the hard guards caught "
        "(error_rate 31.0% ≥ 20% (baseline 0.4%)).",
        "- [ ] Nobody decided in time: check who is paged for approvals (notifications) and the approval "
        "timeout.",
        "- [ ] Confirm the recovery on demo-service's dashboards: this run recorded no measured outcome.",
        "- [ ] This run was simulated: check what actually runs in the environment before closing the "
        "incident.",
    ]


SIMULATED_DRAFT = build_postmortem(None, record=escalated_record(), approval=None, votes=[], audit=[])


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d.replace("# Postmortem", "Postmortem", 1), "the rewrite lost its title"),
        (lambda d: d.replace("## Root cause", "## Cause"), "the rewrite lost the section Root cause"),
        (
            lambda d: (
                d.replace("## Impact", "## Tmp")
                .replace("## Summary", "## Impact")
                .replace("## Tmp", "## Summary")
            ),
            "the rewrite changed the sections or their order",
        ),
        (
            lambda d: d.replace("ESCALATE", "HOLD").replace("escalated", "held"),
            "the rewrite lost the verdict",
        ),
        (lambda d: d.replace("demo-service", "the service"), "the rewrite lost the service"),
        (lambda d: d.replace("v1.4.0", "the new version"), "the rewrite lost the version"),
        (
            lambda d: d.replace("| done: diagnostics", "| ok: diagnostics"),
            "the rewrite lost the result of collect_diagnostics (done)",
        ),
        (lambda d: d.replace("rollback failed", "failed rollback"), "the rewrite lost the deployment status"),
        (lambda d: d.replace("not measured", "unmeasured"), "the rewrite lost the measured outcome"),
        (
            lambda d: d.replace(" · simulated", "").replace("(simulated)", ""),
            "the rewrite lost the word simulated",
        ),
        (
            lambda d: d.replace("Simulated actions changed", "These actions changed").replace(
                " (simulated)", ""
            ),
            "the rewrite lost the word simulated in the actions",
        ),
        (lambda d: d.replace("| Time (UTC) |", "| When |"), "the rewrite lost the timeline table"),
        (lambda d: d + "\n![chart](chart.png)\n", "the rewrite added an image"),
        (lambda d: d + "\nSee `<PATH>` and <b>this</b>.\n", "the rewrite added HTML"),
    ],
)
def test_the_rewrite_check_names_the_first_fact_lost_or_thing_added(edit, reason) -> None:
    facts = facts_of(gather(None, deployment=None, record=escalated_record()))
    check_rewrite(SIMULATED_DRAFT, SIMULATED_DRAFT, facts)  # the draft itself passes
    with pytest.raises(LLMFailure) as caught:
        check_rewrite(edit(SIMULATED_DRAFT), SIMULATED_DRAFT, facts)
    assert caught.value.reason == reason and caught.value.unavailable is False
