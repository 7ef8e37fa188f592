"""The demo-service executor against a local deployer that follows CONTRACTS.md's API.

Every test reaches the deployer through ``deployer.url`` and the token in ``TOKEN_ENV`` only (see
conftest.py for running them against the real deployer)."""

from __future__ import annotations

import logging

import pytest

from console.executors import ActionRequest, DemoServiceExecutor
from tests.executors.conftest import GOOD_VERSION, LEAKY_VERSION, TOKEN_ENV, result_text
from tests.executors.servers import FakeDeployer, closed_port_url


def executor_for(url: str, **extra: object) -> DemoServiceExecutor:
    config = {"type": "demo-service", "url": url, "token_env": TOKEN_ENV, "poll_interval_s": 0.05, **extra}
    return DemoServiceExecutor.from_config(config)


def rollback_request(**kw: object) -> ActionRequest:
    base: dict = {
        "action": "rollback_deployment",
        "service": "demo-service",
        "params": {"to_version": GOOD_VERSION},
        "version": LEAKY_VERSION,
        "previous_version": GOOD_VERSION,
        "deployment_id": "dep-1",
        "execution_id": "exec-1",
        "approved_by": "alice",
        "expected_version": LEAKY_VERSION,
    }
    return ActionRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_rollback_redeploys_the_previous_version_and_verifies_it(
    deployer: FakeDeployer, deployer_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = executor_for(deployer.url).run(rollback_request())
    assert result.status == "done", result.detail
    assert result.label == "rolled back"
    assert result.changed and not result.simulated
    assert result.detail.startswith(f"demo-service rolled back to {GOOD_VERSION} (deployment dep-")
    assert "running and ready after" in result.detail
    assert deployer.version == GOOD_VERSION
    [body] = deployer.posts("/rollback")
    assert body["to"] == GOOD_VERSION
    assert body["expected_version"] == LEAKY_VERSION  # compare-and-swap: only while the leak runs
    assert body["by"] == "devops-loop (approved by alice)"
    assert "exec-1" in body["reason"]
    [post] = [r for r in deployer.requests if r.method == "POST"]
    assert post.headers["idempotency-key"] == rollback_request().idempotency_key
    assert result.commands[0].startswith(f"POST {deployer.url}/rollback {{")
    assert result.commands[0].endswith(
        f"(Authorization: Bearer ***; Idempotency-Key: {post.headers['idempotency-key']})"
    )
    assert result.commands[1].startswith(f"GET {deployer.url}/status")
    assert result.evidence is not None
    assert result.evidence["deployment"]["kind"] == "rollback"
    assert result.evidence["status"]["version"] == GOOD_VERSION
    # the token went over the wire and nowhere else
    assert all(r.headers["authorization"] == f"Bearer {deployer_token}" for r in deployer.requests)
    assert deployer_token not in result_text(result)
    assert deployer_token not in caplog.text
    assert "rolled back" in caplog.text


def test_a_rollback_without_a_named_target_is_refused_never_left_to_the_deployer(
    deployer: FakeDeployer,
) -> None:
    """The announced previous version is a hint from outside: without the loop's target nothing is sent."""
    result = executor_for(deployer.url).run(rollback_request(params={}))
    assert result.status == "refused"
    assert result.detail.startswith("no rollback target: the loop rolls back only to a known-good version")
    assert deployer.requests == [] and deployer.version == LEAKY_VERSION


def test_the_loops_target_version_is_sent(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(rollback_request(params={"to_version": "v1.0.0"}))
    assert result.status == "done", result.detail
    assert deployer.posts("/rollback")[0]["to"] == "v1.0.0"
    assert deployer.version == "v1.0.0"


def test_a_service_that_moved_on_is_refused_by_the_deployer_and_nothing_changes(
    deployer: FakeDeployer,
) -> None:
    """Compare-and-swap: the decision was about the leak, the service runs v1.1.0 now (another deploy
    slipped in after the check): the deployer answers 409 with what runs, nothing is rolled back."""
    result = executor_for(deployer.url).run(rollback_request(expected_version="v1.0.0"))
    assert result.status == "refused", result.detail
    assert result.detail == (
        f"demo-service runs {LEAKY_VERSION}, not v1.0.0: nothing was done (the decision is superseded)"
    )
    assert result.evidence is not None and result.evidence["superseded"]["version"] == LEAKY_VERSION
    assert deployer.version == LEAKY_VERSION and [r["kind"] for r in deployer.records] == ["deploy", "deploy"]


def test_a_lost_answer_is_unknown_then_reconciled_by_the_same_call_which_never_acts_twice(
    deployer: FakeDeployer,
) -> None:
    """The deployer acts, its answer comes after the client gave up: unknown (never failed); the call
    sent again with the same key gets the first one's record, and the rollback happened once."""
    deployer.answer_delay_s = 1.0
    executor = executor_for(deployer.url, timeout_s=0.3)
    request = rollback_request()
    first = executor.run(request)
    assert first.status == "unknown", first.detail
    assert (
        first.detail == f"deployer did not answer within 0.3 s ({deployer.url}): the deployer may have acted"
    )
    assert first.label.startswith("rollback result unknown: deployer did not answer")
    assert not first.changed
    deployer.answer_delay_s = 0.0
    settled = executor.reconcile(request, first, sleep=lambda s: None)
    assert settled.status == "done", settled.detail
    assert settled.reconciled is not None and settled.reconciled["from"] == "unknown"
    assert settled.reconciled["how"] == "the target answered the repeated call"
    assert settled.evidence is not None and settled.evidence["replayed"] is True
    assert [r["kind"] for r in deployer.records] == ["deploy", "deploy", "rollback"]  # once
    assert deployer.version == GOOD_VERSION


def test_probe_reads_what_runs_and_which_switch_put_it_there(deployer: FakeDeployer) -> None:
    executor = executor_for(deployer.url)
    assert executor.can_probe()
    state = executor.probe("demo-service")
    assert (state.version, state.previous_version, state.ready, state.restarts) == (
        LEAKY_VERSION,
        GOOD_VERSION,
        True,
        0,
    )
    assert state.deployment_id == deployer.records[-1]["id"] and state.switched_at
    assert state.source == f"GET {deployer.url}/status"
    assert state.text == f"{LEAKY_VERSION} · ready · 0 crash restarts"
    assert deployer.posts("/rollback") == []


def test_a_slow_switch_is_waited_for(deployer: FakeDeployer) -> None:
    deployer.status_lag_polls = 4
    result = executor_for(deployer.url).run(rollback_request())
    assert result.status == "done", result.detail
    assert result.evidence is not None and result.evidence["status_polls"] == 5


def test_deployer_503_is_a_failed_rollback(deployer: FakeDeployer) -> None:
    deployer.error = (503, "the new instance did not become ready")
    result = executor_for(deployer.url).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == "deployer answered 503: the new instance did not become ready"
    assert result.label == "rollback failed: deployer answered 503: the new instance did not become ready"
    assert "rolled back" not in result.label
    assert not result.changed


def test_deployer_that_never_answers_stays_unknown_never_failed(deployer: FakeDeployer) -> None:
    deployer.answer_delay_s = 2.0
    executor = executor_for(deployer.url, timeout_s=0.2)
    result = executor.reconcile(
        rollback_request(), executor.run(rollback_request()), attempts=2, sleep=lambda s: None
    )
    assert result.status == "unknown"
    assert result.detail.startswith("deployer did not answer within 0.2 s")
    assert result.evidence is not None and result.evidence["reconcile"]["attempts"] == 2
    assert "rolled back" not in result.label and "failed" not in result.label


def test_status_never_showing_the_previous_version_is_a_failed_rollback(deployer: FakeDeployer) -> None:
    deployer.ignore_changes = True  # answers 200 with a record, keeps running the leaky version
    result = executor_for(deployer.url, verify_timeout_s=0.5).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == f"after 0.5 s the service still runs {LEAKY_VERSION} (expected {GOOD_VERSION})"
    assert result.label == f"rollback failed: {result.detail}"
    assert result.evidence is not None and result.evidence["status_polls"] > 1
    assert result.evidence["deployment"]["kind"] == "rollback"  # what the deployer claimed is kept


def test_a_rollback_done_to_a_version_that_is_not_ready_is_done_and_says_so(deployer: FakeDeployer) -> None:
    """The switch happened (the deployer recorded it, the target runs): never "failed"; whether it
    serves is what verify measures (a not-ready instance is never "resolved")."""
    deployer.never_ready = True
    result = executor_for(deployer.url, verify_timeout_s=0.4).run(rollback_request())
    assert result.status == "done"
    assert result.detail.endswith(f"; after 0.4 s {GOOD_VERSION} runs but is not ready")


def test_unreachable_deployer(deployer_token: str) -> None:
    url = closed_port_url()
    result = executor_for(url).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == f"deployer unreachable at {url}: connection refused"
    assert result.label == f"rollback failed: deployer unreachable at {url}: connection refused"


def test_wrong_token_is_a_401_naming_the_variable_not_the_token(
    deployer: FakeDeployer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-value")
    result = executor_for(deployer.url).run(rollback_request())
    assert result.status == "failed"
    assert (
        result.detail
        == f"deployer answered 401: missing or wrong bearer token (check the token in {TOKEN_ENV})"
    )
    assert "wrong-token-value" not in result_text(result)
    assert "wrong-token-value" not in caplog.text
    assert deployer.version == LEAKY_VERSION


def test_missing_token_sends_nothing(deployer: FakeDeployer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    result = executor_for(deployer.url).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == f"deployer token missing: environment variable {TOKEN_ENV} is not set"
    assert deployer.requests == []


def test_unknown_version_and_deploy_in_progress(deployer: FakeDeployer) -> None:
    executor = executor_for(deployer.url)
    unknown = executor.run(rollback_request(params={"to_version": "v0.9.9"}))
    assert unknown.detail == "deployer answered 404: unknown version 'v0.9.9'"
    assert unknown.status == "failed"
    deployer.deploying = True
    busy = executor.run(rollback_request())
    assert busy.detail == "deployer answered 409: a deploy is already in progress: nothing was done"
    assert busy.status == "refused"


def test_restart(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(
        ActionRequest("restart_pod", "demo-service", version=LEAKY_VERSION, execution_id="e2")
    )
    assert result.status == "done", result.detail
    assert result.label == "restarted"
    assert result.detail.startswith(f"demo-service {LEAKY_VERSION} restarted (deployment dep-")
    assert deployer.posts("/restart") == [{"by": "devops-loop"}]  # no expected version asked for
    assert deployer.version == LEAKY_VERSION


def test_restart_that_never_gets_ready_is_done_and_says_so(deployer: FakeDeployer) -> None:
    deployer.never_ready = True
    result = executor_for(deployer.url, verify_timeout_s=0.3).run(
        ActionRequest("restart_pod", "demo-service")
    )
    assert result.label == "restarted"
    assert result.detail.endswith(f"after 0.3 s {LEAKY_VERSION} runs but is not ready")


def test_collect_diagnostics_keeps_status_and_deployments(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(ActionRequest("collect_diagnostics", "demo-service"))
    assert result.status == "done", result.detail
    assert result.label == "diagnostics collected"
    assert result.detail == (
        f"captured demo-service's status ({LEAKY_VERSION}, ready, 0 restarts) "
        "and its 2 most recent deployments"
    )
    assert result.evidence is not None
    assert result.evidence["status"]["version"] == LEAKY_VERSION
    assert [d["version"] for d in result.evidence["deployments"]] == [LEAKY_VERSION, GOOD_VERSION]
    assert result.commands[1] == f"GET {deployer.url}/deployments?limit=5 (Authorization: Bearer ***)"
    assert deployer.posts("/rollback") == deployer.posts("/restart") == []


def test_notify_only_changes_nothing(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(ActionRequest("notify_only", "demo-service"))
    assert result.status == "done"
    assert result.label == "notify only: nothing changed"
    assert result.commands == ()
    assert deployer.requests == []


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("scale_deployment", "it runs one instance"),
        ("increase_resources", "its resources are part of each version's behaviour"),
        ("failover_database", "it has no database"),
    ],
)
def test_what_the_demo_service_cannot_do_is_refused(deployer: FakeDeployer, action: str, why: str) -> None:
    executor = executor_for(deployer.url)
    assert not executor.supports(action)
    result = executor.run(ActionRequest(action, "demo-service", params={"replicas": 3}))
    assert result.status == "refused"
    assert result.detail.startswith(f"demo-service cannot {action}: {why}")
    assert result.commands == ()
    assert deployer.requests == []


def test_describe_says_what_will_happen(deployer: FakeDeployer) -> None:
    executor = executor_for(deployer.url)
    assert executor.describe(rollback_request()) == (
        f"POST {deployer.url}/rollback to {GOOD_VERSION} if {LEAKY_VERSION} still runs, then wait up "
        "to 10 s for GET /status to show it running and ready"
    )
    assert executor.describe(rollback_request(params={})).startswith("refused: no rollback target")
    assert executor.describe(ActionRequest("scale_deployment", "demo-service")) == (
        "refused: demo-service cannot scale_deployment: it runs one instance"
    )
    assert deployer.requests == []
