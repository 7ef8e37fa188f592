"""Action effectiveness from measured outcomes (console/loop/effectiveness.py), the store query that
feeds it, its export, and the policy that may only route more strictly with it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from console.domain.models import Decision
from console.loop import effectiveness as E
from console.loop.policy import plan_actions
from console.storage import Store

OOM = {"template": "out of memory: rss <*> MB", "level": "ERROR", "count_before": 0, "count_after": 40,
       "status": "new", "category": "out_of_memory"}  # fmt: skip


def record(action: str, status: str, *, measured: str = "resolved", simulated: bool = False, patterns=None):
    return {
        "execution_id": f"{action}-{status}-{measured}-{simulated}",
        "decision": {
            "verdict": "ROLLBACK",
            "log_patterns": patterns if patterns is not None else [OOM],
            "guards": [],
            "metrics": {},
        },
        "executed": [
            {"name": "collect_diagnostics", "status": "done", "simulated": simulated},
            {"name": action, "status": status, "simulated": simulated, "dry_run": False},
        ],
        "measured": {"status": measured},
        "outcome": {"simulated": simulated},
    }


def test_counts_only_remediations_that_ran_and_conclusive_measurements():
    records = [record("rollback_deployment", "done") for _ in range(9)]
    records += [record("rollback_deployment", "done", measured="not_resolved")]
    records += [record("rollback_deployment", "failed", measured="not_resolved")]  # did not run
    records += [record("rollback_deployment", "done", measured="inconclusive")]  # cannot tell
    records += [record("rollback_deployment", "done", simulated=True) for _ in range(5)]
    [row] = E.action_effectiveness(records)
    assert (row.category, row.action, row.successes, row.total) == (
        "out_of_memory",
        "rollback_deployment",
        9,
        10,
    )
    assert (row.simulated_successes, row.simulated_total) == (5, 5)
    assert row.confidence == pytest.approx(0.9)
    assert row.sentence == (
        "rollback_deployment resolved 9 of 10 out-of-memory regressions "
        "(5 of 5 in simulated runs, not counted)"
    )


def test_confidence_is_the_success_rate_weighted_by_how_many_runs():
    rows = E.action_effectiveness(
        [record("restart_pod", "done")] * 3 + [record("restart_pod", "done", measured="not_resolved")]
    )
    assert rows[0].success_rate == 0.75 and rows[0].confidence == pytest.approx(0.75 * 0.4)
    only_simulated = E.action_effectiveness([record("restart_pod", "done", simulated=True)])[0]
    assert only_simulated.total == 0 and only_simulated.confidence == 0.0
    assert only_simulated.sentence.startswith(
        "restart_pod has no measured real run on out-of-memory regressions"
    )


@pytest.mark.parametrize(
    ("decision", "category"),
    [
        ({"log_patterns": [OOM]}, "out_of_memory"),
        (
            {
                "log_patterns": [{**OOM, "status": "steady"}],
                "guards": ["pod_restarts 5 since the deploy ≥ 3"],
            },
            "crash_loop",
        ),
        ({"guards": ["memory_utilization 95.2% ≥ 90% and rising"]}, "out_of_memory"),
        ({"metrics": {"latency_p95_ms": {"name": "latency_p95_ms", "classification": "High"}}}, "latency"),
        ({"metrics": [{"name": "error_rate", "classification": "High"}]}, "error_rate"),
        # a leak decided on its climb to the limit, before any guard or out-of-memory log
        (
            {
                "metrics": [
                    {"name": "error_rate", "classification": "Pass"},
                    {"name": "memory_utilization", "classification": "High", "basis": "trend"},
                ]
            },
            "out_of_memory",
        ),
        ({}, "unknown"),
        # Handed over by Kestra, so malformed: guards that are a number, a metric named by a dict.
        ({"guards": 7, "metrics": 3, "log_patterns": "x"}, "unknown"),
        ({"metrics": [{"name": {"a": 1}, "classification": "High"}]}, "unknown"),
    ],
)
def test_root_cause_category(decision, category):
    assert E.root_cause_category(decision) == category


@pytest.mark.parametrize(
    ("count", "category"),
    [(":", "panic"), ("9999-12-31T23:59:59-01:00", "panic"), (float("inf"), "panic"),
     (float("nan"), "panic"), (None, "panic"), ([], "panic"), ([1, 2], "panic"), (True, "panic"),
     ("12", "out_of_memory")],
)  # fmt: skip
def test_root_cause_category_ranks_a_garbage_count_as_zero(count, category):
    """A record step's decision comes from outside (Kestra's inputs): a count that is not a finite
    number ranks as 0 and never raises (found by tests/reliability/test_bad_step_input.py)."""
    panic = {**OOM, "category": "panic", "count_after": 3}
    assert E.root_cause_category({"log_patterns": [{**OOM, "count_after": count}, panic]}) == category
    assert E.root_cause_category({"log_patterns": [{**OOM, "count_after": count}]}) == "out_of_memory"


def test_the_store_reads_what_effectiveness_needs_of_measured_records(settings):
    store = Store(settings.db_path)
    try:
        with store.db.write() as conn:
            for i, rec in enumerate(
                [
                    record("rollback_deployment", "done"),
                    record("restart_pod", "done", measured="inconclusive"),
                ]
            ):
                store.outcomes.save_in(conn, f"ex{i}", None, {**rec, "plan": {}, "approval": {}})
        rows = store.outcomes.effectiveness_rows()
    finally:
        store.close()
    assert len(rows) == 1  # the inconclusive one is left out
    assert rows[0]["decision"]["log_patterns"][0]["category"] == "out_of_memory"
    assert [a["name"] for a in rows[0]["executed"]] == ["collect_diagnostics", "rollback_deployment"]
    assert E.action_effectiveness(rows)[0].total == 1


def test_the_store_groups_identical_effects_and_still_reads_records_of_before_the_column(settings):
    store = Store(settings.db_path)
    try:
        with store.db.write() as conn:
            for i in range(3):  # three identical measured rollbacks: one group of three
                rec = record("rollback_deployment", "done", measured="not_resolved" if i == 2 else "resolved")
                store.outcomes.save_in(conn, f"ex{i}", None, {**rec, "plan": {}, "approval": {}})
            store.outcomes.save_in(conn, "ex3", None, {**record("rollback_deployment", "done"), "plan": {}})
            # a record written before the effect column existed
            conn.execute("UPDATE outcomes SET effect = NULL WHERE execution_id = 'ex3'")
        rows = store.outcomes.effectiveness_rows()
    finally:
        store.close()
    assert sorted(r["times"] for r in rows) == [1, 1, 2]  # two alike, one not resolved, one old record
    [row] = E.action_effectiveness(rows)
    assert (row.action, row.successes, row.total) == ("rollback_deployment", 3, 4)


def _decision(confidence: float = 0.95) -> Decision:
    return Decision.from_dict(
        {
            "verdict": "ROLLBACK",
            "severity": "HIGH",
            "confidence": confidence,
            "summary": "",
            "actions": [
                {"name": "restart_pod", "risk": "LOW", "reason": "", "params": {}},
                {"name": "collect_diagnostics", "risk": "LOW", "reason": "", "params": {}},
            ],
            "log_patterns": [OOM],
        }
    )


def test_the_policy_sends_an_automatic_action_with_a_poor_record_to_a_human_only_when_configured(settings):
    poor = E.action_effectiveness(
        [record("restart_pod", "done", measured="not_resolved")] * 3 + [record("restart_pod", "done")]
    )
    plain = plan_actions(_decision(), settings, effectiveness=poor)
    assert [a.name for a in plain.auto] == ["restart_pod", "collect_diagnostics"]  # off by default
    on = replace(settings, policy_use_effectiveness=True)
    strict = plan_actions(_decision(), on, effectiveness=poor)
    assert [a.name for a in strict.auto] == ["collect_diagnostics"]
    assert [a.name for a in strict.approval] == ["restart_pod"] and strict.required_approvals == 1
    assert strict.notes == [
        "restart_pod resolved 1 of 4 out-of-memory regressions: "
        "a human decides (measured record, stricter routing)"
    ]
    # a good record never loosens anything, and too few runs say nothing
    good = E.action_effectiveness([record("restart_pod", "done")] * 10)
    assert [a.name for a in plan_actions(_decision(0.5), on, effectiveness=good).approval] == [
        "restart_pod",
        "collect_diagnostics",
    ]
    few = E.action_effectiveness([record("restart_pod", "done", measured="not_resolved")] * 2)
    assert [a.name for a in plan_actions(_decision(), on, effectiveness=few).auto] == [
        "restart_pod",
        "collect_diagnostics",
    ]


def test_the_decide_step_reads_the_table_from_the_store_when_configured(settings):
    from console.loop import steps

    store = Store(settings.db_path)
    with store.db.write() as conn:
        for i in range(3):
            rec = record("restart_pod", "done", measured="not_resolved")
            store.outcomes.save_in(conn, f"ex{i}", None, {**rec, "plan": {}, "approval": {}})
    store.close()
    decision = _decision().to_dict()
    assert steps.decide({"decision": decision}, settings)["plan"]["approval"] == []
    on = replace(settings, policy_use_effectiveness=True)
    assert [a["name"] for a in steps.decide({"decision": decision}, on)["plan"]["approval"]] == [
        "restart_pod"
    ]


def test_export_training_writes_the_effectiveness_table(settings, monkeypatch, capsys):
    from console.__main__ import main

    store = Store(settings.db_path)
    with store.db.write() as conn:
        store.outcomes.save_in(
            conn, "ex1", None, {**record("rollback_deployment", "done"), "plan": {}, "approval": {}}
        )
    store.close()
    monkeypatch.setenv("CONSOLE_DATA_DIR", str(settings.data_dir))
    assert main(["export-training", "--format", "effectiveness"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["sentence"] == "rollback_deployment resolved 1 of 1 out-of-memory regressions"
    assert row["confidence"] == pytest.approx(0.1)
