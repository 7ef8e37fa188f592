"""The executor interface: request/result JSON, labels, masking, and run() never raising."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import pytest

from console.domain.actions import ACTION_NAMES, ACTIONS
from console.domain.redaction import mask_url
from console.domain.text import one_line
from console.executors import (
    EXECUTOR_TYPES,
    ActionRequest,
    ActionResult,
    ServiceState,
    effect_seen,
    result_label,
)
from console.executors.base import ActionFailed, BaseExecutor, Handler, RunLog, bounded_json, scrub


def make_result(action: str = "rollback_deployment", status: str = "done", **kw) -> ActionResult:
    base = {"simulated": False, "executor": "demo-service", "detail": "x"}
    return ActionResult(action=action, status=status, **{**base, **kw})


def test_executors_declare_support_only_for_actions_of_the_vocabulary() -> None:
    """One vocabulary (console/domain/actions.py): every executor type's handlers are actions of it,
    and every action's words in a label come from it."""
    for kind in EXECUTOR_TYPES.values():
        handlers = kind._handlers(kind.__new__(kind))
        assert set(handlers) <= set(ACTION_NAMES), kind
    for name, spec in ACTIONS.items():
        assert result_label(make_result(action=name)).startswith(spec.effect.split(" to ")[0])
        assert result_label(make_result(action=name, status="failed")).startswith(f"{spec.noun} failed: ")


def test_request_round_trip_and_target_version() -> None:
    request = ActionRequest(
        action="rollback_deployment",
        service="demo-service",
        params={"to_version": "v1.0.0"},
        version="v1.2.0-leak",
        previous_version="v1.1.0",
        deployment_id="d1",
        execution_id="e1",
        approved_by="alice",
    )
    again = ActionRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert request.target_version == "v1.0.0"  # the loop's named target
    # the announced previous version is context, never a target
    assert ActionRequest("rollback_deployment", "s", previous_version="v1").target_version is None
    assert ActionRequest.from_dict({"action": "notify_only", "service": "s"}).approved_by == "auto"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be an object"),
        ({"service": "s"}, "needs 'action'"),
        ({"action": "notify_only"}, "needs 'service'"),
        ({"action": "notify_only", "service": "s", "params": [1]}, "'params' must be an object"),
        ({"action": "notify_only", "service": "s", "version": ["v"]}, "version must be a string"),
    ],
)
def test_request_from_bad_json_is_one_line(doc: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        ActionRequest.from_dict(doc)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_result_round_trip_keeps_everything() -> None:
    result = make_result(
        status="failed",
        detail="deployer answered 503: new instance did not become ready",
        commands=("POST http://127.0.0.1:1/rollback (Authorization: Bearer ***)",),
        started_at="2026-11-29T17:00:00.000Z",
        finished_at="2026-11-29T17:00:01.000Z",
        evidence={"deployment": {"id": "d"}},
    )
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["label"] == "rollback failed: deployer answered 503: new instance did not become ready"
    assert ActionResult.from_dict(doc) == result


@pytest.mark.parametrize(
    "doc",
    [
        {"action": "a", "status": "maybe", "executor": "e", "detail": ""},
        {"action": "a", "status": "done", "executor": "e"},
        {"action": "a", "status": "done", "executor": "e", "detail": "", "simulated": "yes"},
        {"action": "a", "status": "done", "executor": "e", "detail": "", "commands": "kubectl"},
        {"action": "a", "status": "done", "executor": "e", "detail": "", "evidence": [1]},
    ],
)
def test_result_from_bad_json_raises_value_error(doc: dict) -> None:
    with pytest.raises(ValueError):
        ActionResult.from_dict(doc)


@pytest.mark.parametrize(
    ("kw", "label"),
    [
        ({}, "rolled back"),
        ({"simulated": True, "executor": "simulated"}, "rolled back (simulated)"),
        ({"dry_run": True, "executor": "kubectl"}, "rollback (server dry run)"),
        (
            {"status": "failed", "detail": "deployer answered 503: not ready"},
            "rollback failed: deployer answered 503: not ready",
        ),
        ({"status": "refused", "detail": "no"}, "rollback refused: no"),
        ({"status": "failed", "dry_run": True, "detail": "x"}, "rollback failed: x (server dry run)"),
        ({"executor": "webhook", "evidence": {"status_code": 202}}, "rolled back"),  # confirmed by its state
        (
            {"action": "notify_only", "executor": "webhook", "evidence": {"status_code": 202}},
            "notification sent: webhook answered 202",
        ),
        (
            {"status": "unknown", "detail": "deployer did not answer within 2 s"},
            "rollback result unknown: deployer did not answer within 2 s",
        ),
        ({"action": "restart_pod"}, "restarted"),
        ({"action": "scale_deployment", "evidence": {"replicas": 4}}, "scaled to 4 replicas"),
        (
            {"action": "scale_deployment", "status": "refused", "detail": "it runs one instance"},
            "scale refused: it runs one instance",
        ),
        ({"action": "increase_resources"}, "resources increased"),
        ({"action": "collect_diagnostics"}, "diagnostics collected"),
        ({"action": "failover_database", "simulated": True}, "database failed over (simulated)"),
        ({"action": "notify_only"}, "notify only: nothing changed"),
        ({"action": "something_new"}, "something_new done"),
    ],
)
def test_labels(kw: dict, label: str) -> None:
    assert result_label(make_result(**kw)) == label


@pytest.mark.parametrize("status", ["failed", "refused", "unknown"])
def test_a_rollback_that_did_not_happen_never_reads_rolled_back(status: str) -> None:
    word = {"unknown": "result unknown"}.get(status, status)
    for simulated in (False, True):
        for dry_run in (False, True):
            result = make_result(status=status, simulated=simulated, dry_run=dry_run, detail="it broke")
            assert "rolled back" not in result.label
            assert result.label.startswith(f"rollback {word}: it broke")
            assert not result.changed


def test_changed_only_when_the_change_happened_on_the_target() -> None:
    assert make_result().changed
    assert not make_result(simulated=True).changed
    assert not make_result(dry_run=True).changed
    assert not make_result(status="failed").changed
    assert not make_result(status="unknown").changed
    assert not make_result(action="collect_diagnostics").changed  # read-only: nothing changes


def test_effect_seen_reads_the_change_each_action_asked_for() -> None:
    rollback = ActionRequest("rollback_deployment", "s", params={"to_version": "v1.0.0"})
    before = ServiceState("v1.2.0-leak", ready=True, started_at="t1", revision="7", replicas=2)
    assert effect_seen(rollback, before, ServiceState("v1.0.0", ready=False))  # it runs: the change happened
    assert not effect_seen(rollback, before, ServiceState("v1.0.0", deploying=True))  # still switching
    assert not effect_seen(rollback, before, ServiceState("v1.2.0-leak"))
    assert not effect_seen(ActionRequest("rollback_deployment", "s"), before, ServiceState("v1.0.0"))
    restart = ActionRequest("restart_pod", "s")
    assert effect_seen(restart, before, ServiceState("v1.2.0-leak", started_at="t2"))
    assert not effect_seen(restart, before, ServiceState("v1.2.0-leak", started_at="t1"))
    assert not effect_seen(restart, None, ServiceState("v1.2.0-leak", started_at="t2"))
    scale = ActionRequest("scale_deployment", "s", params={"replicas": 4})
    assert effect_seen(scale, before, ServiceState("v1.2.0-leak", replicas=4))
    resources = ActionRequest("increase_resources", "s")
    assert effect_seen(resources, before, ServiceState("v1.2.0-leak", revision="8"))
    assert not effect_seen(ActionRequest("notify_only", "s"), before, ServiceState("x", started_at="t9"))


def test_service_state_round_trip_and_crash_loop() -> None:
    state = ServiceState("v1.5.0-crashloop", ready=False, restarts=4, deployment_id="dep-1")
    assert ServiceState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert state.crash_looping and state.healthy is False
    assert state.text == "v1.5.0-crashloop · not ready · 4 crash restarts"
    assert ServiceState("v1", ready=True, restarts=1).healthy is True
    assert ServiceState.from_dict({"ready": True}) is None


def test_helpers() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000)) == 300
    assert scrub({"k": ["Bearer s3cr3t!", ("s3cr3t!",)]}, ["s3cr3t!"]) == {"k": ["Bearer ***", ("***",)]}
    assert scrub("nothing", [""]) == "nothing"
    assert mask_url("https://u:pw@host:8443/p?token=abc&x=1") == "https://***@host:8443/p?token=***&x=***"
    assert mask_url("http://127.0.0.1:8700") == "http://127.0.0.1:8700"
    assert bounded_json({"a": 1}) == {"a": 1}
    assert bounded_json({"a": "x" * 100}, limit=50)["truncated"] is True


class Broken(BaseExecutor):
    """An executor whose handler raises something unexpected after touching a secret."""

    name = "broken"

    def _handlers(self) -> Mapping[str, Handler]:
        return {"restart_pod": self._boom, "notify_only": self._fails}

    def _boom(self, request: ActionRequest, log: RunLog) -> str:
        log.secrets.append("hunter2-secret")
        log.command("curl -H 'Authorization: Bearer hunter2-secret' http://x")
        raise RuntimeError("exploded\nwhile holding hunter2-secret")

    def _fails(self, request: ActionRequest, log: RunLog) -> str:
        raise ActionFailed("nope")

    def _describe_action(self, request: ActionRequest) -> str:
        raise RuntimeError("no words")


def test_run_never_raises_and_masks_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    executor = Broken()
    result = executor.run(ActionRequest("restart_pod", "api"))
    assert result.status == "failed"
    assert result.detail == "the broken executor broke: RuntimeError: exploded while holding ***"
    assert result.commands == ("curl -H 'Authorization: Bearer ***' http://x",)
    assert "hunter2-secret" not in json.dumps(result.to_dict())
    assert "hunter2-secret" not in caplog.text
    assert executor.run(ActionRequest("notify_only", "api")).label == "notification failed: nope"
    assert executor.run("not a request").status == "failed"  # type: ignore[arg-type]
    assert executor.describe(ActionRequest("restart_pod", "api")) == "cannot describe: RuntimeError: no words"


def test_unknown_and_unsupported_actions_are_refused() -> None:
    executor = Broken()
    unknown = executor.run(ActionRequest("delete_cluster", "api"))
    assert unknown.status == "refused"
    assert unknown.detail.startswith("unknown action 'delete_cluster' (one of rollback_deployment")
    unsupported = executor.run(ActionRequest("scale_deployment", "api"))
    assert unsupported.status == "refused"
    assert unsupported.detail == "api cannot scale_deployment: the broken executor does not do it"
    assert executor.describe(ActionRequest("scale_deployment", "api")).startswith("refused: api cannot")
    for result in (unknown, unsupported):
        assert result.started_at.endswith("Z") and result.finished_at >= result.started_at


class Unsure(BaseExecutor):
    """A target whose call always times out after it may have acted; its state is read from a list."""

    name = "unsure"

    def __init__(self, states: list[ServiceState | Exception]) -> None:
        self.states = states
        self.calls = 0

    def _handlers(self) -> Mapping[str, Handler]:
        return {"rollback_deployment": self._call}

    def _call(self, request: ActionRequest, log: RunLog) -> str:
        from console.executors.base import ActionUnknown

        self.calls += 1
        raise ActionUnknown("no answer within 2 s")

    def _describe_action(self, request: ActionRequest) -> str:
        return "roll back"

    def _probe(self, service: str) -> ServiceState:
        state = self.states.pop(0)
        if isinstance(state, Exception):
            raise state
        return state


def test_reconcile_reads_the_state_with_backoff_until_the_change_shows_and_never_calls_again() -> None:
    rollback = ActionRequest("rollback_deployment", "s", params={"to_version": "v1.0.0"})
    executor = Unsure(
        [RuntimeError("frozen"), ServiceState("v1.2.0-leak", deploying=True), ServiceState("v1.0.0")]
    )
    first = executor.run(rollback)
    assert first.status == "unknown" and executor.calls == 1
    sleeps: list[float] = []
    settled = executor.reconcile(rollback, first, attempts=4, backoff_s=0.5, sleep=sleeps.append)
    assert settled.status == "done" and settled.label == "rolled back"
    assert settled.reconciled is not None and settled.reconciled["attempts"] == 3
    assert settled.detail.startswith("s now runs v1.0.0: no answer within 2 s")
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert executor.calls == 1  # a target without idempotency keys is only read, never called again


def test_reconcile_that_never_sees_the_change_stays_unknown_and_says_what_it_read() -> None:
    rollback = ActionRequest("rollback_deployment", "s", params={"to_version": "v1.0.0"})
    executor = Unsure([ServiceState("v1.2.0-leak")] * 3)
    settled = executor.reconcile(rollback, executor.run(rollback), attempts=3, sleep=lambda s: None)
    assert settled.status == "unknown"
    assert settled.evidence is not None
    assert settled.evidence["reconcile"]["reads"] == ["state: v1.2.0-leak"] * 3
    done = make_result()
    assert executor.reconcile(rollback, done) is done  # only an unknown result is reconciled
