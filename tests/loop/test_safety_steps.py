"""execute and verify against a deployer that follows the demo deployer's API (in-process stand-in,
no processes): the check right before the call, the compare-and-swap that closes the race after
it, a target never taken from outside, an unknown result reconciled in verify (and the record and
the status following it)."""

from __future__ import annotations

import pytest

from console.loop import acting, steps
from tests.executors.servers import run_deployer
from tests.loop.conftest import FakeClock, until_done
from tests.loop.test_live_steps import DEPLOYMENT, PLAN, TARGET, TOKEN, WATCHED, executor_section

pytestmark = pytest.mark.safety
APPROVED = {"approved": True, "approver": "bob", "comment": "leak", "rollback_target": TARGET}


def run(settings, **extra) -> dict:
    data = {
        "plan": PLAN,
        "approval": APPROVED,
        "verdict": "ROLLBACK",
        "deployment": DEPLOYMENT,
        "verification": WATCHED,
    }
    return steps.execute({**data, **extra, "execution_id": "ex-1"}, settings, sleep=lambda s: None)


def test_an_approval_made_after_another_deploy_is_superseded_and_nothing_runs(live):
    """The decision was about v1.1.0; v1.2.0 was deployed since: nothing is sent, the deployment and
    the result say what changed and when."""
    with run_deployer(TOKEN) as deployer:
        newer = deployer.deploy("v1.2.0")
        out = run(live(executor_section(deployer.url)))
        assert deployer.posts("/rollback") == []
        assert [r["kind"] for r in deployer.records] == ["deploy"]  # the history is unchanged
    assert out["deployment_status"] == "superseded"
    assert out["superseded"]["by"] == "precondition"
    reason = out["superseded"]["reason"]
    assert reason.startswith("v1.2.0 is running now since ") and reason.endswith(
        "this decision was about v1.1.0"
    )
    rollback = out["executed"][1]
    assert rollback["status"] == "refused" and rollback["label"].startswith(
        "rollback refused: superseded: v1.2.0"
    )
    assert rollback["precondition"]["state"]["deployment_id"] == newer["id"]


def test_the_same_version_switched_in_again_since_the_decision_is_superseded(live):
    with run_deployer(TOKEN, version="v1.0.0", previous_version=None) as deployer:
        deployer.deploy("v1.1.0")  # v1.1.0 again, after the deploy the decision was about
        out = run(live(executor_section(deployer.url)))
        assert deployer.posts("/rollback") == []
    assert out["deployment_status"] == "superseded"
    assert "v1.1.0 was switched in again" in out["superseded"]["reason"]


def test_a_race_between_the_check_and_the_call_is_closed_by_compare_and_swap(live, monkeypatch):
    """The check read the old state; a deploy slipped in before the call: the deployer refuses the
    expected version with 409 and rolls nothing back."""
    with run_deployer(TOKEN) as deployer:
        settings = live(executor_section(deployer.url))
        real_check = acting.check_now

        def check_then_someone_deploys(executor, deployment, **kw):
            checked = real_check(executor, deployment, **kw)
            deployer.deploy("v1.2.0")
            return checked

        monkeypatch.setattr(acting, "check_now", check_then_someone_deploys)
        out = run(settings)
        assert [r["kind"] for r in deployer.records] == ["deploy"] and deployer.version == "v1.2.0"
        [post] = deployer.posts("/rollback")
        assert post["expected_version"] == "v1.1.0"
    assert out["deployment_status"] == "superseded"
    assert out["executed"][1]["detail"] == (
        "demo-service runs v1.2.0, not v1.1.0: nothing was done (the decision is superseded)"
    )


def test_a_switch_under_way_is_waited_for_then_refused(live):
    with run_deployer(TOKEN, deploying=True) as deployer:
        out = run(live(executor_section(deployer.url)))
        assert deployer.posts("/rollback") == []
    rollback = out["executed"][1]
    assert rollback["status"] == "refused"
    assert rollback["detail"].startswith(
        "a switch is under way on demo-service (v1.1.0 · a switch is under way"
    )
    assert out["deployment_status"] == "rollback failed"


def test_an_approval_without_a_checked_target_never_rolls_back_to_the_announced_version(live):
    with run_deployer(TOKEN) as deployer:
        out = run(live(executor_section(deployer.url)), approval={"approved": True, "approver": "bob"})
        assert deployer.posts("/rollback") == []
    rollback = out["executed"][1]
    assert rollback["status"] == "refused"
    assert (
        rollback["detail"]
        == "no verified rollback target: the target was not checked against the revision history"
    )


def test_an_unknown_result_is_reconciled_by_verify_and_the_record_follows(live, monkeypatch):
    """The deployer acts but answers after the client gave up, again and again: execute records
    unknown (never failed); verify reads back (the same call, the same key: the deployer answers
    the first one's record) before its window, and the record and the status follow."""
    with run_deployer(TOKEN, answer_delay_s=1.0) as deployer:
        settings = live(
            f"    executor: {{type: demo-service, url: '{deployer.url}', token_env: DEMO_DEPLOYER_TOKEN, "
            "verify_timeout_s: 2, timeout_s: 0.3}\n"
        )
        out = run(settings)
        rollback = out["executed"][1]
        assert rollback["status"] == "unknown", rollback["detail"]
        assert out["deployment_status"] == "result unknown"
        assert [r["kind"] for r in deployer.records] == ["rollback"]  # it did act, once
        deployer.answer_delay_s = 0.0
        looks: list = []
        measured = until_done(
            steps.verify,
            {"deployment": DEPLOYMENT, "verification": WATCHED, "executed": out["executed"],
             "deployment_status": out["deployment_status"]},
            settings, FakeClock(1_000.0), looks=looks,
        )["measured"]  # fmt: skip
        assert looks == []  # the first look read the target back (no metrics here: nothing to wait for)
        assert [r["kind"] for r in deployer.records] == ["rollback"]  # asked again, never acted twice
    [_, settled] = measured["actions"]
    assert settled["status"] == "done" and settled["evidence"]["reconciled"]["from"] == "unknown"
    assert measured["deployment_status"] == "rolled back"
    record = steps.record(
        {"execution_id": "ex-1", "snapshot": {"deployment": DEPLOYMENT}, "decision": {"verdict": "ROLLBACK"},
         "plan": PLAN, "approval": APPROVED, "executed": out["executed"],
         "deployment_status": out["deployment_status"], "measured": measured},
        settings,
    )["outcome"]  # fmt: skip
    assert record["outcome"]["deployment_status"] == "rolled back"
    assert record["executed"][1]["status"] == "done"


def test_verify_gives_up_reconciling_after_its_bound_and_stays_unknown(live):
    with run_deployer(TOKEN, answer_delay_s=2.0) as deployer:
        settings = live(
            f"    executor: {{type: demo-service, url: '{deployer.url}', token_env: DEMO_DEPLOYER_TOKEN, "
            "timeout_s: 0.2}\n"
        )
        out = run(settings)
        looks: list = []
        measured = until_done(
            steps.verify,
            {"deployment": DEPLOYMENT, "verification": WATCHED, "executed": out["executed"]},
            settings, FakeClock(1_000.0), looks=looks,
        )["measured"]  # fmt: skip
    # one reading a look, backing off (1, 2, 4, 5, 5 ... s) until the 120 s bound, never longer
    assert all(look["waiting_for"] == "the action's result (reading the target)" for look in looks)
    assert 20 <= len(looks) <= 30
    assert "actions" not in measured  # nothing learnt: the record keeps execute's unknown
    assert steps.deployment_status("ROLLBACK", out["executed"], APPROVED).value == "result unknown"


def test_the_kubectl_executor_checks_the_deployment_before_it_undoes(live, tmp_path, monkeypatch):
    """The same precondition through kubectl's state (the image tag of the Deployment): another
    version runs, nothing is undone; the version the decision was about runs, the rollback goes to
    the revision running the target version."""
    from tests.executors.kubectl_standin import install
    from tests.executors.test_kubectl import deployment_json, replica_sets_json

    fake = install(tmp_path, monkeypatch)
    fake.on("get", "deployment/api", stdout=deployment_json("v1.2.0"))
    settings = live("    executor: {type: kubectl, namespace: shop, deployment: api}\n")
    out = run(settings)
    assert out["deployment_status"] == "superseded"
    assert out["superseded"]["reason"] == "v1.2.0 is running now: this decision was about v1.1.0"
    assert not any("undo" in argv for argv in fake.calls())

    fake.rules_path.unlink()
    fake.on("get", "deployment/api", stdout=deployment_json("v1.1.0"))
    fake.on("get", "rs", stdout=replica_sets_json((4, "v1.0.0"), (5, "v1.1.0")))
    fake.on("get", "pods", stdout='{"items": []}')
    done = run(settings)
    assert done["deployment_status"] == "rolled back", done["executed"][1]["detail"]
    assert ["rollout", "undo", "deployment/api", "-n", "shop", "--to-revision=4"] in fake.calls()


def rollbacks(receiver) -> list:
    return [d for d in receiver.deliveries if d.json()["action"] == "rollback_deployment"]


def test_the_webhook_executor_checks_its_state_endpoint_before_it_sends(live, monkeypatch):
    """The same precondition through a receiver's state_url (README, "Webhook executor")."""
    from tests.executors.servers import serve
    from tests.executors.test_webhook import TOKEN_ENV, StatefulReceiver

    monkeypatch.setenv(TOKEN_ENV, "hook-token-5b1f0e")
    receiver = StatefulReceiver(version="v1.2.0")
    with serve(receiver.handle) as url:
        settings = live(
            f"    executor: {{type: webhook, url: '{url}/hook', state_url: '{url}/state', "
            f"token_env: {TOKEN_ENV}, confirm_timeout_s: 1}}\n"
        )
        out = run(settings)
        assert rollbacks(receiver) == []  # nothing sent
        assert out["deployment_status"] == "superseded"
        receiver.version = "v1.1.0"
        done = run(settings)
    [delivery] = rollbacks(receiver)
    assert (
        delivery.json()["expected_version"] == "v1.1.0"
        and delivery.json()["params"]["to_version"] == "v1.0.0"
    )
    assert done["deployment_status"] == "rolled back", done["executed"][1]["detail"]
