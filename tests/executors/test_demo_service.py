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
        "version": LEAKY_VERSION,
        "previous_version": GOOD_VERSION,
        "deployment_id": "dep-1",
        "execution_id": "exec-1",
        "approved_by": "alice",
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
    assert body["by"] == "devops-loop (approved by alice)"
    assert "exec-1" in body["reason"]
    assert result.commands[0].startswith(f"POST {deployer.url}/rollback {{")
    assert result.commands[0].endswith("(Authorization: Bearer ***)")
    assert result.commands[1].startswith(f"GET {deployer.url}/status")
    assert result.evidence is not None
    assert result.evidence["deployment"]["kind"] == "rollback"
    assert result.evidence["status"]["version"] == GOOD_VERSION
    # the token went over the wire and nowhere else
    assert all(r.headers["authorization"] == f"Bearer {deployer_token}" for r in deployer.requests)
    assert deployer_token not in result_text(result)
    assert deployer_token not in caplog.text
    assert "rolled back" in caplog.text


def test_rollback_without_a_known_previous_version_lets_the_deployer_choose(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(rollback_request(previous_version=None))
    assert result.status == "done", result.detail
    [body] = deployer.posts("/rollback")
    assert "to" not in body
    assert deployer.version == GOOD_VERSION
    assert f"rolled back to {GOOD_VERSION}" in result.detail


def test_the_analyzers_target_version_wins(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(rollback_request(params={"to_version": "v1.0.0"}))
    assert result.status == "done", result.detail
    assert deployer.posts("/rollback")[0]["to"] == "v1.0.0"
    assert deployer.version == "v1.0.0"


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


def test_deployer_too_slow_is_a_failed_rollback(deployer: FakeDeployer) -> None:
    deployer.answer_delay_s = 2.0
    result = executor_for(deployer.url, timeout_s=0.4).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == f"deployer did not answer within 0.4 s ({deployer.url})"
    assert result.label.startswith("rollback failed: deployer did not answer within 0.4 s")


def test_status_never_showing_the_previous_version_is_a_failed_rollback(deployer: FakeDeployer) -> None:
    deployer.ignore_changes = True  # answers 200 with a record, keeps running the leaky version
    result = executor_for(deployer.url, verify_timeout_s=0.5).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == f"after 0.5 s the service still runs {LEAKY_VERSION} (expected {GOOD_VERSION})"
    assert result.label == f"rollback failed: {result.detail}"
    assert result.evidence is not None and result.evidence["status_polls"] > 1
    assert result.evidence["deployment"]["kind"] == "rollback"  # what the deployer claimed is kept


def test_previous_version_never_ready_is_a_failed_rollback(deployer: FakeDeployer) -> None:
    deployer.never_ready = True
    result = executor_for(deployer.url, verify_timeout_s=0.4).run(rollback_request())
    assert result.status == "failed"
    assert result.detail == f"after 0.4 s {GOOD_VERSION} runs but is not ready"


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
    unknown = executor.run(rollback_request(previous_version="v0.9.9"))
    assert unknown.detail == "deployer answered 404: unknown version 'v0.9.9'"
    deployer.deploying = True
    busy = executor.run(rollback_request())
    assert busy.detail == "deployer answered 409: a deploy is already in progress"
    assert {unknown.status, busy.status} == {"failed"}


def test_restart(deployer: FakeDeployer) -> None:
    result = executor_for(deployer.url).run(
        ActionRequest("restart_pod", "demo-service", version=LEAKY_VERSION, execution_id="e2")
    )
    assert result.status == "done", result.detail
    assert result.label == "restarted"
    assert result.detail.startswith(f"demo-service {LEAKY_VERSION} restarted (deployment dep-")
    assert deployer.posts("/restart") == [{"by": "devops-loop"}]
    assert deployer.version == LEAKY_VERSION


def test_restart_that_never_gets_ready_fails(deployer: FakeDeployer) -> None:
    deployer.never_ready = True
    result = executor_for(deployer.url, verify_timeout_s=0.3).run(
        ActionRequest("restart_pod", "demo-service")
    )
    assert result.label == f"restart failed: after 0.3 s {LEAKY_VERSION} runs but is not ready"


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
        f"POST {deployer.url}/rollback to {GOOD_VERSION}, then wait up to 10 s for GET /status "
        "to show it running and ready"
    )
    assert executor.describe(ActionRequest("scale_deployment", "demo-service")) == (
        "refused: demo-service cannot scale_deployment: it runs one instance"
    )
    assert deployer.requests == []
