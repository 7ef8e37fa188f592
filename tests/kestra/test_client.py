"""The real client over HTTP against the fake Kestra: flows, executions, logs, resume, kill,
1.x vs 2.x paths, and every failure mode as a clear one-line error within bounded time."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from console.domain.executions import State
from console.engines.kestra.client import (
    KestraAuthError,
    KestraBadRequest,
    KestraClient,
    KestraConflict,
    KestraNotFound,
    KestraProtocolError,
    KestraServerError,
    KestraTimeout,
    KestraUnreachable,
)
from console.settings import Secret
from console.telemetry.times import format_ts
from demo_service.notify import announcement
from tests.conftest import logs_only_service
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.kestra

NS, LOOP = "devops.loop", "devops-loop"


def _loop_until(fake: FakeKestra, client: KestraClient, inputs: dict, states: set[str]) -> str:
    execution = client.trigger(NS, LOOP, inputs)
    fake.wait_state(execution.id, states)
    return execution.id


# ---------------------------------------------------------------- flows
def test_deploy_flows_creates_then_updates(fake: FakeKestra, client: KestraClient) -> None:
    first = client.deploy_flows(FLOWS_DIR)
    assert {r["id"] for r in first} == {p.stem for p in FLOWS_DIR.glob("*.yaml")}
    assert {r["action"] for r in first} == {"created"}
    # subflows are deployed before the flow that calls them
    order = [r["id"] for r in first]
    assert order.index("devops-loop") > max(order.index(s) for s in ("collect-snapshot", "decision-flow"))
    second = client.deploy_flows(FLOWS_DIR)
    assert {r["action"] for r in second} == {"updated"}
    assert {r["revision"] for r in second} == {2}
    assert ("PUT", "/api/v1/main/flows/devops.loop/devops-loop") in fake.requests
    assert fake.flows[(NS, LOOP)]["revision"] == 2


def test_validate_flows_reports_constraints(client: KestraClient, tmp_path: Path) -> None:
    good = (FLOWS_DIR / "collect-snapshot.yaml").read_text()
    bad = good.replace("id: collect-snapshot", "id: broken-flow").replace("type: STRING", "type: TEXT", 1)
    results = client.validate_flows([good, bad])
    assert [r["index"] for r in results] == [0, 1]
    assert results[0]["constraints"] is None
    assert "TEXT" in results[1]["constraints"]
    # deploy_flows refuses the whole folder and names the broken file
    (tmp_path / "broken-flow.yaml").write_text(bad)
    with pytest.raises(KestraBadRequest, match=r"broken-flow\.yaml is invalid"):
        client.deploy_flows(tmp_path)


def test_deploy_rejects_unparsable_yaml_naming_the_file(client: KestraClient, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("id: x\nnamespace: [\n")
    with pytest.raises(KestraBadRequest, match=r"x\.yaml: flow YAML does not parse at line"):
        client.deploy_flows(tmp_path)


# ---------------------------------------------------------------- executions
def test_trigger_with_inputs_and_labels(loaded: FakeKestra, client: KestraClient) -> None:
    execution = client.trigger(
        NS, LOOP, {"scenario": "healthy-hotfix", "triggered_by": "alice"}, labels={"team": "sre"}
    )
    assert execution.flow_id == LOOP and execution.namespace == NS
    assert execution.labels["team"] == "sre"
    assert execution.inputs["scenario"] == "healthy-hotfix"
    stored = loaded.executions[execution.id]
    assert stored["inputs"]["triggered_by"] == "alice"
    assert {"key": "team", "value": "sre"} in stored["labels"]


def test_trigger_unknown_flow_is_not_found(loaded: FakeKestra, client: KestraClient) -> None:
    with pytest.raises(KestraNotFound, match="HTTP 404"):
        client.trigger(NS, "no-such-flow", {"x": "1"})


def test_trigger_with_badly_typed_input_is_rejected(loaded: FakeKestra, client: KestraClient) -> None:
    with pytest.raises(KestraBadRequest, match="snapshot"):
        client.trigger(NS, LOOP, {"snapshot": "{not json"})


def test_run_to_pause_get_logs_and_resume(loaded: FakeKestra, client: KestraClient) -> None:
    ex_id = _loop_until(
        loaded, client, {"scenario": "memory-leak", "triggered_by": "ci"}, {"PAUSED", "FAILED"}
    )
    execution = client.get_execution(ex_id)
    assert execution.state == State.PAUSED
    assert [r.task_id for r in execution.task_runs] == [
        "collect",
        "summarize",
        "decide",
        "approval_gate",
        "approval",
    ]
    plan = execution.task_run("decide").outputs["outputs"]["plan"]
    assert plan["needs_approval"] is True
    logs = client.logs(ex_id)
    assert any("paused" in entry.message.lower() for entry in logs)
    assert client.logs(ex_id, min_level="ERROR") == []

    client.resume(ex_id, {"approved": True, "comment": "roll it back", "approver": "bob"})
    loaded.wait_state(ex_id, {"SUCCESS", "FAILED"})
    done = client.get_execution(ex_id)
    assert done.state == State.SUCCESS
    assert done.task_run("approval").outputs["onResume"] == {
        "approved": True,
        "comment": "roll it back",
        "approver": "bob",
        "rollback_target": None,
    }
    assert done.outputs["deployment_status"] == "rolled back"
    # resuming again: 409 → KestraConflict with a plain message
    with pytest.raises(KestraConflict, match="is not paused"):
        client.resume(ex_id, {"approved": True, "comment": "", "approver": "bob"})


def test_resume_requires_the_required_inputs(loaded: FakeKestra, client: KestraClient) -> None:
    ex_id = _loop_until(loaded, client, {"scenario": "memory-leak"}, {"PAUSED"})
    with pytest.raises(KestraBadRequest, match="approver"):
        client.resume(ex_id, {"approved": True})
    assert loaded.executions[ex_id]["state"]["current"] == "PAUSED"
    # comment and rollback_target are optional: absent, they are null (Kestra applies no prefill)
    client.resume(ex_id, {"approved": True, "approver": "bob"})
    loaded.wait_state(ex_id, {"SUCCESS", "FAILED"})
    run = next(r for r in loaded.executions[ex_id]["taskRunList"] if r["taskId"] == "approval")
    assert run["outputs"]["onResume"] == {
        "approved": True,
        "comment": None,
        "approver": "bob",
        "rollback_target": None,
    }


def test_kill_paused_then_conflict_and_unknown(loaded: FakeKestra, client: KestraClient) -> None:
    ex_id = _loop_until(loaded, client, {"scenario": "memory-leak"}, {"PAUSED"})
    client.kill(ex_id)  # Accept: text/json, what the route produces (anything else: 406)
    loaded.wait_state(ex_id, {"KILLED"})
    assert client.get_execution(ex_id).state == State.KILLED
    kills = [p for m, p in loaded.requests if m == "DELETE"]
    assert kills == [f"/api/v1/main/executions/{ex_id}/kill"]
    # Kestra would accept (202) a kill of the ended run and do nothing: the client says so instead
    with pytest.raises(KestraConflict, match=r"already ended \(KILLED\); nothing to kill"):
        client.kill(ex_id)
    assert [p for m, p in loaded.requests if m == "DELETE"] == kills  # no second DELETE sent
    with pytest.raises(KestraNotFound):
        client.kill("0000000000000000000000")
    with pytest.raises(KestraNotFound):
        client.get_execution("0000000000000000000000")


def test_search_filters_and_paging(loaded: FakeKestra, client: KestraClient) -> None:
    paused = [_loop_until(loaded, client, {"scenario": "memory-leak"}, {"PAUSED"}) for _ in range(2)]
    healthy = _loop_until(loaded, client, {"scenario": "healthy-hotfix"}, {"SUCCESS", "FAILED"})
    assert loaded.executions[healthy]["state"]["current"] == "SUCCESS"

    items, total = client.search_executions(namespace=NS, flow_id=LOOP)
    assert total == 3 and {e.id for e in items} == {*paused, healthy}
    starts = [e.start for e in items]
    assert starts == sorted(starts, reverse=True)  # state.startDate:desc

    items, total = client.search_executions(namespace=NS, flow_id=LOOP, states=[State.PAUSED])
    assert total == 2 and {e.id for e in items} == set(paused)
    items, total = client.search_executions(namespace=NS, states=["SUCCESS"], flow_id="collect-snapshot")
    assert total == 3  # every run's collect subflow succeeded; children carry parentId
    assert all(e.parent_id in {*paused, healthy} for e in items)

    page1, total = client.search_executions(namespace=NS, flow_id=LOOP, page=1, size=2)
    page2, _ = client.search_executions(namespace=NS, flow_id=LOOP, page=2, size=2)
    assert total == 3 and len(page1) == 2 and len(page2) == 1
    assert {e.id for e in page1 + page2} == {*paused, healthy}
    query = [p for m, p in loaded.requests if p.endswith("/executions/search")]
    assert query, "search went through /api/v1/main/executions/search"
    with pytest.raises(KestraBadRequest):
        client.search_executions(page=0)


# ---------------------------------------------------------------- 2.x
def test_version_detection_and_2x_paths(loaded2: FakeKestra, client2: KestraClient) -> None:
    assert client2.version == "2.0.0" and client2.major == 2
    ex_id = _loop_until(loaded2, client2, {"scenario": "memory-leak"}, {"PAUSED"})
    items, _ = client2.search_executions(namespace=NS, flow_id=LOOP)
    assert items[0].task_runs == []  # 2.x list items are light
    execution = client2.get_execution(ex_id)  # outputs come from /outputs/{executionId}
    assert execution.task_run("decide").outputs["outputs"]["plan"]["needs_approval"] is True
    assert any(p.startswith(f"/api/v1/main/outputs/{ex_id}/") for _, p in loaded2.requests)
    client2.resume(ex_id, {"approved": False, "comment": "no", "approver": "carol"})
    assert ("POST", f"/api/v1/main/executions/{ex_id}/actions/resume") in loaded2.requests
    loaded2.wait_state(ex_id, {"SUCCESS", "FAILED"})
    with pytest.raises(KestraConflict):
        client2.kill(ex_id)
    other = _loop_until(loaded2, client2, {"scenario": "memory-leak"}, {"PAUSED"})
    client2.kill(other)
    assert ("DELETE", f"/api/v1/main/executions/{other}/actions/kill") in loaded2.requests
    assert loaded2.wait_state(other, {"KILLED"})["state"]["current"] == "KILLED"


def test_1x_client_does_not_use_2x_paths(loaded: FakeKestra, client: KestraClient) -> None:
    ex_id = _loop_until(loaded, client, {"scenario": "memory-leak"}, {"PAUSED"})
    client.resume(ex_id, {"approved": False, "comment": "", "approver": "x"})
    assert ("POST", f"/api/v1/main/executions/{ex_id}/resume") in loaded.requests
    assert not any("/actions/" in p or "/outputs/" in p for _, p in loaded.requests)


def test_tenant_aware_paths(loaded: FakeKestra) -> None:
    other = KestraClient(loaded.url, tenant="acme", username=USER, password=PASSWORD, timeout=2)
    with pytest.raises(KestraNotFound):
        other.search_executions()
    assert ("GET", "/api/v1/acme/executions/search") in loaded.requests


# ---------------------------------------------------------------- failures
def test_wrong_or_missing_credentials(loaded: FakeKestra) -> None:
    secret = "Wrong-Pass-42"
    wrong = KestraClient(loaded.url, username=USER, password=Secret(secret), timeout=2)
    with pytest.raises(KestraAuthError) as info:
        wrong.search_executions()
    message = str(info.value)
    assert "HTTP 401" in message and "KESTRA_PASSWORD" in message and secret not in message
    assert "\n" not in message
    with pytest.raises(KestraAuthError):
        KestraClient(loaded.url, timeout=2).search_executions()
    assert secret not in repr(wrong)


def test_token_is_sent_as_bearer_and_never_shown(loaded: FakeKestra) -> None:
    token = "tok-very-secret-123"
    client = KestraClient(loaded.url, token=token, timeout=2)
    with pytest.raises(KestraAuthError) as info:  # a server that accepts no tokens
        client.search_executions()
    assert token not in str(info.value) and token not in repr(client)
    loaded.token = token
    assert client.search_executions() == ([], 0)
    loaded.token = "another-token"
    with pytest.raises(KestraAuthError):
        client.search_executions()


def test_credentials_in_url_are_not_shown(loaded: FakeKestra) -> None:
    url = loaded.url.replace("http://", "http://someone:Url-Pass-9@")
    client = KestraClient(url, username=USER, password=PASSWORD, timeout=2)
    loaded.fault = "500"
    with pytest.raises(KestraServerError) as info:
        client.search_executions()
    assert "Url-Pass-9" not in str(info.value) and "someone" not in str(info.value)


def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The TCP connections urllib3 (under requests) opens from now on, as (host, port)."""
    import urllib3.util.connection

    opened: list[tuple[str, int]] = []
    original = urllib3.util.connection.create_connection

    def counted(address, *args, **kwargs):
        opened.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    return opened


def test_down_is_unreachable_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection refused: a clear error after the read's few tries, never a wait for the timeout."""
    client = KestraClient(
        f"http://127.0.0.1:{free_port()}", username=USER, password=PASSWORD, timeout=60, retries=2,
        backoff_s=0.05,
    )  # fmt: skip
    opened = connections(monkeypatch)
    with pytest.raises(KestraUnreachable, match="cannot be reached"):
        client.search_executions()  # a timeout would have said "did not answer"
    assert len(opened) == 3


def test_fake_going_down_mid_session(loaded: FakeKestra, client: KestraClient) -> None:
    client.search_executions()
    loaded.down()
    with pytest.raises(KestraUnreachable):
        client.get_execution("x")


def test_slow_server_times_out_within_bounds(loaded: FakeKestra) -> None:
    loaded.fault, loaded.slow_seconds = "slow", 2.0
    client = KestraClient(
        loaded.url, username=USER, password=PASSWORD, timeout=0.3, retries=2, backoff_s=0.05
    )
    before = len(loaded.requests)
    t0 = time.monotonic()
    with pytest.raises(KestraTimeout, match=r"did not answer .* within 0\.3 s"):
        client.search_executions()
    # 3 GET attempts, each given up after 0.3 s: never the server's answer after 2 s
    assert time.monotonic() - t0 >= 0.9
    wait_until(lambda: len(loaded.requests) - before >= 3, 5, what="the fake recording the 3 requests")
    assert len(loaded.requests) - before == 3


def test_writes_are_never_retried(loaded: FakeKestra) -> None:
    loaded.fault, loaded.slow_seconds = "slow", 1.0
    client = KestraClient(
        loaded.url, username=USER, password=PASSWORD, timeout=0.3, retries=3, backoff_s=0.01
    )
    before = len(loaded.requests)
    with pytest.raises(KestraTimeout):
        client.trigger(NS, LOOP, {"scenario": "memory-leak"})
    wait_until(lambda: len(loaded.requests) > before, 5, what="the fake recording the request")
    assert len(loaded.requests) - before == 1  # the call is over: a retry would have been sent already


def test_reads_retry_then_succeed(loaded: FakeKestra, client: KestraClient) -> None:
    """A 503 on a GET is retried (bounded); the next answer is used."""
    loaded.fault = "503 once"
    before = len(loaded.requests)
    items, total = client.search_executions()
    assert len(loaded.requests) - before == 2 and total == 0 and items == []


def test_reads_give_up_after_the_last_try_with_one_clear_error(loaded: FakeKestra) -> None:
    loaded.fault = "500"
    client = KestraClient(loaded.url, username=USER, password=PASSWORD, timeout=2, retries=2, backoff_s=0.01)
    before = len(loaded.requests)
    with pytest.raises(KestraServerError, match=r"^Kestra failed on search executions \(HTTP 500\)"):
        client.search_executions()
    assert len(loaded.requests) - before == 1  # a 500 is an answer, not a blip: not retried


def test_a_write_that_cannot_connect_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib3 retries a failed connection for any method; the client limits it to reads."""
    client = KestraClient(
        f"http://127.0.0.1:{free_port()}", username=USER, password=PASSWORD, timeout=1, retries=2,
        backoff_s=0.2, version="1.3.21",
    )  # fmt: skip
    opened = connections(monkeypatch)
    with pytest.raises(KestraUnreachable, match="cannot be reached"):
        client.resume("abc", {"approved": True})
    assert len(opened) == 1  # no retry
    opened.clear()
    t0 = time.monotonic()
    with pytest.raises(KestraUnreachable, match="cannot be reached"):
        client.get_execution("abc")
    assert len(opened) == 3  # tried again at once, then after 2 x 0.2 s
    assert time.monotonic() - t0 >= 0.4


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        ("401", KestraAuthError, "refused the credentials"),
        ("404", KestraNotFound, "HTTP 404"),
        ("500", KestraServerError, "HTTP 500"),
        ("malformed", KestraProtocolError, "not JSON"),
    ],
)
def test_fault_modes_give_clear_errors(loaded: FakeKestra, client: KestraClient, fault, error, text) -> None:
    loaded.fault = fault
    for call in (
        lambda: client.search_executions(),
        lambda: client.get_execution("abc"),
        lambda: client.logs("abc"),
    ):
        with pytest.raises(error, match=text) as info:
            call()
        assert "\n" not in str(info.value) and PASSWORD not in str(info.value)


def test_malformed_execution_shape_is_a_protocol_error(loaded: FakeKestra, client: KestraClient) -> None:
    ex_id = _loop_until(loaded, client, {"scenario": "memory-leak"}, {"PAUSED"})
    with loaded.lock:
        loaded.executions[ex_id]["state"]["current"] = "DANCING"
    with pytest.raises(KestraProtocolError, match=r"unexpected execution: state\.current"):
        client.get_execution(ex_id)


def test_bad_base_url() -> None:
    with pytest.raises(Exception, match="must start with http"):
        KestraClient("localhost:8080")


def test_unknown_state_filter_is_a_clear_error(client: KestraClient) -> None:
    with pytest.raises(KestraBadRequest, match="unknown execution state"):
        client.search_executions(states=["DANCING"])


def test_server_without_configs_uses_1x_paths(loaded: FakeKestra, client: KestraClient) -> None:
    ex_id = _loop_until(loaded, client, {"scenario": "memory-leak"}, {"PAUSED"})
    old = KestraClient(loaded.url, username=USER, password=PASSWORD, timeout=2)
    loaded.fault = "404"
    assert old.major == 1
    loaded.fault = None
    old.resume(ex_id, {"approved": False, "comment": "", "approver": "x"})
    assert ("POST", f"/api/v1/main/executions/{ex_id}/resume") in loaded.requests


def test_webhook_trigger_maps_the_body_to_inputs(loaded: FakeKestra, tmp_path: Path) -> None:
    """A deployer's webhook call, as a default Kestra takes it: no login (the key is the only guard),
    and the execution has only the inputs the trigger declares, read from the body. The body is
    the demo deployer's announcement; the service's sources come from the services file."""
    services, now = logs_only_service(tmp_path, lines=3)
    loaded.settings = replace(loaded.settings, services_file=services, live_poll_s=0.1)
    path = loaded.webhook_path("devops-loop")
    key = path.rsplit("/", 1)[1]
    assert key == loaded.secrets["DEVOPS_LOOP_WEBHOOK_KEY"] and len(key) >= 40
    base = loaded.url + path.rsplit("/", 1)[0]
    record = {"id": "dep-777", "version": "v1.2.0", "previous_version": "v1.0.0", "by": "alice"}
    body = announcement({**record, "at": format_ts(now)}, "live-demo")
    wrong = requests.post(f"{base}/not-the-key", json=body, timeout=5)
    assert wrong.status_code == 404
    answer = requests.post(f"{base}/{key}", json=body, timeout=5)  # no credentials: an open URL
    assert answer.status_code == 200, answer.text
    # 1.x answers a WebhookResponse, not the whole execution
    response = "tenantId id namespace flowId flowRevision trigger outputs labels state url"
    assert set(answer.json()) == set(response.split())
    execution_id = answer.json()["id"]
    done = loaded.wait_state(execution_id, {"PAUSED", "SUCCESS", "FAILED"})
    assert done["state"]["current"] in {"PAUSED", "SUCCESS"}, loaded.logs[execution_id]
    assert done["trigger"]["variables"]["body"] == body
    assert done["inputs"] == {
        "deployment_id": "dep-777", "service": "demo-service", "version": "v1.2.0",
        "previous_version": "v1.0.0", "deployed_at": body["deployed_at"], "deployed_by": "alice",
        "source": "demo-deployer", "triggered_by": "kestra", "scenario": None, "snapshot": None,
    }  # fmt: skip
    collect = next(e for e in loaded.executions.values() if e["flowId"] == "collect-snapshot")
    snapshot = collect["outputs"]["snapshot"]
    assert snapshot["deployment"] == {
        "id": "dep-777",
        "service": "demo-service",
        "version": "v1.2.0",
        "previous_version": "v1.0.0",
        "environment": "live-demo",
        "deployed_at": body["deployed_at"],
        "deployed_by": "alice",
    }
    assert collect["outputs"]["verification"]["ended"] == "window end"
    assert len(snapshot["logs"]) == 3  # read from the service's log file, no mock data


def test_webhook_for_a_service_without_sources_fails_with_one_line(loaded: FakeKestra) -> None:
    body = {"deployment_id": "deploy-777", "service": "payment-service", "version": "v9.9.9"}
    answer = requests.post(loaded.url + loaded.webhook_path("devops-loop"), json=body, timeout=5)
    done = loaded.wait_state(answer.json()["id"], {"PAUSED", "SUCCESS", "FAILED"})
    assert done["state"]["current"] == "FAILED"
    errors = [e["message"] for e in loaded.logs[done["id"]] if e["level"] == "ERROR"]
    collect = next(e for e in loaded.executions.values() if e["flowId"] == "collect-snapshot")
    errors += [e["message"] for e in loaded.logs[collect["id"]] if e["level"] == "ERROR"]
    assert any("no telemetry source configured for service 'payment-service'" in m for m in errors)


def test_deploy_order_puts_subflows_first() -> None:
    from console.engines.kestra.client import deploy_order

    def call(task_id: str, flow_id: str) -> dict:
        return {
            "id": task_id,
            "type": "io.kestra.plugin.core.flow.Subflow",
            "namespace": "n",
            "flowId": flow_id,
        }

    docs = [
        {"namespace": "n", "id": "top", "tasks": [call("a", "mid")]},
        {"namespace": "n", "id": "mid", "tasks": [{"id": "b", "type": "x", "then": [call("c", "leaf")]}]},
        {"namespace": "n", "id": "leaf", "tasks": []},
        {"namespace": "n", "id": "loop", "tasks": [call("d", "loop")]},
    ]
    assert deploy_order(docs) == [2, 1, 0, 3]


def test_none_inputs_are_not_sent(loaded: FakeKestra, client: KestraClient) -> None:
    execution = client.trigger(NS, LOOP, {"scenario": "healthy-hotfix", "service": None})
    assert loaded.executions[execution.id]["inputs"]["service"] is None  # absent, not the text "null"
