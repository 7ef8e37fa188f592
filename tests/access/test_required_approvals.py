"""How many people must approve comes from the registry's risk of the requested actions, in the
store, on both engines' paths: never from the plan that asks (a plan without
``required_approvals``, or with 1, for a CRITICAL action still needs two)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.loop import steps
from console.storage import Store
from tests.conftest import kestra_settings
from tests.waiting import wait_for_state

CRITICAL_SCENARIO = "database-outage-before-deploy"  # recommends failover_database (CRITICAL)
REAL_DECIDE = steps.decide


def decide_claiming(required: int | None):
    """The decide step, but the plan it returns says ``required`` approvers (None: no such key),
    as an older flow, a hand-written plan or a tampered output would."""

    def decide(data, settings):
        out = REAL_DECIDE(data, settings)
        plan = dict(out["plan"])
        plan.pop("required_approvals", None)
        if required is not None:
            plan["required_approvals"] = required
        # and each action claims LOW risk: the registry decides, not the document
        plan["approval"] = [{**a, "risk": "LOW"} for a in plan.get("approval", [])]
        return {**out, "plan": plan}

    return decide


def bob() -> Identity:
    return Identity("bob", Role.APPROVER, source="password")


def carol() -> Identity:
    return Identity("carol", Role.ADMIN, source="password")


@pytest.mark.parametrize("claimed", [None, 1, 0])
def test_embedded_request_needs_two_for_a_critical_action_whatever_the_plan_says(
    settings, monkeypatch, claimed
):
    monkeypatch.setattr(steps, "decide", decide_claiming(claimed))
    engine = EmbeddedEngine(settings, max_workers=1)
    try:
        execution = engine.run_sync(scenario=CRITICAL_SCENARIO, triggered_by="seed", timeout=60)
        assert execution.state == State.PAUSED
        plan = execution.task_run("decide").outputs["plan"]
        assert plan.get("required_approvals") == claimed  # the plan really says so
        service = ApprovalService(engine.store, engine, settings)
        approval = service.for_execution(execution.id)
        assert approval["required_approvals"] == 2
        assert approval["risk"] == "CRITICAL"
        assert service.vote(approval["id"], bob(), True, "").status == "recorded"
        assert engine.store.approvals.get(approval["id"])["status"] == "pending"
        assert service.vote(approval["id"], carol(), True, "").status == "approved"
    finally:
        engine.close()


def test_critical_approvers_setting_raises_the_count_but_never_below_two(settings):
    store = Store(settings.db_path)
    try:
        for setting, expected in ((3, 3), (1, 2)):
            with store.db.write() as conn:
                approval_id, _ = store.approvals.request_in(
                    conn,
                    execution_id=f"ex-{setting}",
                    plan={
                        "approval": [{"name": "failover_database", "risk": "LOW"}],
                        "required_approvals": 1,
                    },
                    decision={},
                    requested_by="ci",
                    service="db",
                    deployment_id=None,
                    timeout_minutes=30,
                    critical_approvers=setting,
                )
            assert store.approvals.get(approval_id)["required_approvals"] == expected
    finally:
        store.close()


@pytest.mark.parametrize(
    ("actions", "risk", "required"),
    [
        ([{"name": "rollback_deployment", "risk": "CRITICAL"}], "HIGH", 1),  # stated risk ignored
        ([{"name": "restart_pod"}, {"name": "failover_database"}], "CRITICAL", 2),
        ([{"name": "drop_all_tables", "risk": "LOW"}], "CRITICAL", 2),  # unknown: strictest review
        ([], "LOW", 1),
    ],
)
def test_risk_and_approvers_come_from_the_registry(settings, actions, risk, required):
    store = Store(settings.db_path)
    try:
        with store.db.write() as conn:
            approval_id, _ = store.approvals.request_in(
                conn,
                execution_id="ex-1",
                plan={"approval": actions, "required_approvals": 5},
                decision={},
                requested_by="ci",
                service="svc",
                deployment_id=None,
                timeout_minutes=30,
            )
        row = store.approvals.get(approval_id)
        assert (row["risk"], row["required_approvals"]) == (risk, required)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("claimed", [None, 1])
def test_kestra_mirror_needs_two_for_a_critical_action_whatever_the_plan_says(
    kestra, tmp_path, monkeypatch, claimed
):
    monkeypatch.setitem(steps.STEPS, "decide", decide_claiming(claimed))  # the fake runs the steps
    settings = kestra_settings(kestra, tmp_path)
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    try:
        mirror = KestraMirror(store, backend, settings)
        service = ApprovalService(store, backend, settings, refresh=mirror.refresh)
        execution_id = backend.launch_scenario(CRITICAL_SCENARIO, "seed")
        assert wait_for_state(backend, execution_id, {State.PAUSED, State.FAILED}).state == State.PAUSED
        item = backend.approval_request(backend.get_execution(execution_id))
        assert item["plan"].get("required_approvals") == claimed
        [pending] = service.pending()  # request_approval_in, the mirror's path
        assert pending["required_approvals"] == 2 and pending["risk"] == "CRITICAL"
        assert service.vote(pending["id"], bob(), True, "").status == "recorded"
        assert store.approvals.get(pending["id"])["status"] == "pending"
    finally:
        store.close()
        backend.close()


def test_a_plan_from_settings_with_more_critical_approvers(settings):
    """The count follows the console's setting on the embedded path too."""
    settings = replace(settings, critical_approvers=3)
    engine = EmbeddedEngine(settings, max_workers=1)
    try:
        execution = engine.run_sync(scenario=CRITICAL_SCENARIO, triggered_by="seed", timeout=60)
        assert engine.store.approvals.for_execution(execution.id)["required_approvals"] == 3
    finally:
        engine.close()


def test_the_rule_lives_in_the_registry():
    """One rule for the policy, the incident routing and the store: the registry's risk of the
    names, never the risk a document states; an unknown name is CRITICAL; no action needs no one."""
    from console.domain.actions import required_approvals

    assert required_approvals([], 3) == 0
    assert required_approvals([{"name": "restart_pod", "risk": "CRITICAL"}], 3) == 1
    assert required_approvals([{"name": "failover_database", "risk": "LOW"}], 3) == 3
    assert required_approvals([{"name": "failover_database"}], 1) == 2
    assert required_approvals([{"name": "no_such_action"}], 2) == 2
