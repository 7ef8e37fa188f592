"""Contract tests: the fake Kestra refuses what Kestra 1.3 refuses, rule by rule, over HTTP. Each rule
is the one implementation in console/engines/kestra/rules.py (or pebble.py) that the flow linter
applies too; docs/kestra.md names the Kestra class each mirrors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
import yaml

from console.engines.backend import BackendError
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.client import KestraBadRequest, KestraClient
from console.settings import Secret, Settings
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra

pytestmark = pytest.mark.kestra

NS = "devops.loop"
BEFORE = Path(__file__).parent / "fixtures" / "flows-before-issue-20"


def _api(fake: FakeKestra, method: str, path: str, **kw) -> requests.Response:
    kw.setdefault("auth", (USER, PASSWORD))
    return requests.request(method, f"{fake.url}/api/v1/main{path}", timeout=10, **kw)


def _post_flow(fake: FakeKestra, source: str) -> requests.Response:
    return _api(fake, "POST", "/flows", data=source.encode(), headers={"Content-Type": "application/x-yaml"})


def _flow(inputs: str, tasks: str = "", triggers: str = "", flow_id: str = "probe") -> str:
    tasks = tasks or "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hello\n"
    return f"id: {flow_id}\nnamespace: {NS}\ninputs:\n{inputs}tasks:\n{tasks}{triggers}"


def _errors(fake: FakeKestra, execution_id: str) -> list[str]:
    return [e["message"] for e in fake.logs[execution_id] if e["level"] == "ERROR"]


def _failed_with(fake: FakeKestra, execution_id: str) -> str:
    done = fake.wait_state(execution_id, {"SUCCESS", "FAILED", "PAUSED"})
    assert done["state"]["current"] == "FAILED", done["state"]
    return " | ".join(_errors(fake, execution_id))


# -- InputValidator ------------------------------------------------------------------------------------
OPTIONAL_WITH_DEFAULTS = "  - id: who\n    type: STRING\n    required: false\n    defaults: kestra\n"
DEFAULTS_AND_PREFILL = "  - id: who\n    type: STRING\n    defaults: a\n    prefill: b\n"
RESUME_WITH_DEFAULTS = """  - id: gate
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT1M
    behavior: CANCEL
    onResume:
      - id: comment
        type: STRING
        required: false
        defaults: ""
"""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (_flow(OPTIONAL_WITH_DEFAULTS), "Inputs with a default value must be required"),
        (_flow(DEFAULTS_AND_PREFILL), "Inputs with a default value cannot also have a prefill"),
        (_flow("", RESUME_WITH_DEFAULTS), "Inputs with a default value must be required"),
        (_flow("  - id: flag\n    type: TOGGLE\n"), "is not a Kestra input type"),
    ],
)
def test_input_validator_refuses_on_create_and_validate(fake: FakeKestra, source: str, message: str) -> None:
    created = _post_flow(fake, source)
    assert created.status_code == 422 and message in created.json()["message"]
    [result] = _api(fake, "POST", "/flows/validate", data=source.encode()).json()
    assert message in result["constraints"]
    assert fake.flows == {}


def test_prefill_is_accepted_and_never_applied(loaded: FakeKestra, client: KestraClient) -> None:
    """`prefill` is a UI hint (Input.prefill): an API launch without the input leaves it null."""
    execution = client.trigger(NS, "devops-loop", {"scenario": "healthy-hotfix"})
    assert loaded.executions[execution.id]["inputs"]["triggered_by"] is None


def test_flow_path_loader_skips_refused_flows_so_launches_are_404(fake: FakeKestra, tmp_path: Path) -> None:
    """Kestra's --flow-path loader only warns about an invalid flow: the old flows never load."""
    for name in ("collect-snapshot", "summarize-incident", "decision-flow"):
        shutil.copy(FLOWS_DIR / f"{name}.yaml", tmp_path)
    for path in BEFORE.glob("*.yaml"):
        shutil.copy(path, tmp_path)
    fake.deploy_dir(tmp_path)
    assert {ref[1] for ref in fake.flows} == {"collect-snapshot", "summarize-incident", "decision-flow"}
    assert len(fake.skipped) == 2 and all("default value must be required" in s for s in fake.skipped)
    launch = _api(fake, "POST", f"/executions/{NS}/devops-loop", files={"scenario": (None, "memory-leak")})
    assert launch.status_code == 404


def test_sync_refuses_the_old_flows_naming_the_violation(fake: FakeKestra, tmp_path: Path) -> None:
    """The client's sync runs /flows/validate and deploys nothing when a flow is refused; the
    backend's sync lints first and never reaches Kestra with them."""
    for name in ("collect-snapshot", "summarize-incident", "decision-flow"):
        shutil.copy(FLOWS_DIR / f"{name}.yaml", tmp_path)
    for path in BEFORE.glob("*.yaml"):
        shutil.copy(path, tmp_path)
    client = KestraClient(fake.url, username=USER, password=PASSWORD, timeout=5)
    with pytest.raises(KestraBadRequest) as info:
        client.deploy_flows(tmp_path)
    message = str(info.value)
    assert message.startswith("flow devops-loop.yaml is invalid: inputs[triggered_by]: Inputs with a default")
    assert message.endswith("(and 1 more)") and "\n" not in message  # the onResume comment
    assert fake.flows == {}
    backend = KestraBackend(
        Settings(
            data_dir=tmp_path / "data", flows_dir=tmp_path, kestra_url=fake.url, kestra_username=USER,
            kestra_password=Secret(PASSWORD),
        )
    )  # fmt: skip
    before = len(fake.requests)
    with pytest.raises(BackendError, match=r"^flows not deployed: .*devops-loop\.yaml: devops-loop: "):
        backend.sync_flows()
    assert len(fake.requests) == before and fake.flows == {}


# -- webhook inputs come from the trigger only; strict Pebble ------------------------------------------
def _without_trigger_inputs(tmp_path: Path, flow: str) -> Path:
    shutil.copytree(FLOWS_DIR, tmp_path / "flows")
    path = tmp_path / "flows" / f"{flow}.yaml"
    doc = yaml.safe_load(path.read_text())
    for trigger in doc["triggers"]:
        del trigger["inputs"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path / "flows"


@pytest.mark.parametrize(
    ("flow", "body", "undefined"),
    [
        ("devops-loop", {"service": "demo-service", "version": "v2"}, "inputs"),
        ("incident-handler", {"version": "4", "alerts": []}, "inputs"),
    ],
)
def test_a_webhook_without_trigger_inputs_fails_on_its_first_task(
    fake: FakeKestra, tmp_path: Path, flow: str, body: dict, undefined: str
) -> None:
    """Kestra saves such a flow (the linter's runtime rule catches it), and every delivery fails:
    the execution has no `inputs`, and strict Pebble refuses `inputs.x` (only `??`, `???`,
    `is defined` and `default` tolerate absence)."""
    fake.deploy_dir(_without_trigger_inputs(tmp_path, flow))
    assert fake.skipped == []
    answer = requests.post(fake.url + fake.webhook_path(flow), json=body, timeout=10)
    assert answer.status_code == 200
    errors = _failed_with(fake, answer.json()["id"])
    assert f"collect: Unable to find `{undefined}` used in the expression" in errors
    assert "inputs" not in fake.executions[answer.json()["id"]]


def test_trigger_inputs_resolve_every_flow_input(loaded: FakeKestra) -> None:
    """With trigger `inputs`, the flow's inputs are resolved like an API launch: the declared ones
    from the body, every other one defined and null."""
    url = loaded.url + loaded.webhook_path("incident-handler")
    answer = requests.post(url, json={"alerts": []}, timeout=10)
    assert answer.status_code == 200, answer.text
    inputs = loaded.executions[answer.json()["id"]]["inputs"]
    assert inputs["source"] == inputs["triggered_by"] == "alertmanager"
    assert inputs["service"] is None and inputs["labels"] is None and len(inputs) == 15
    # the body names no service: collect says so in one line (no strict-Pebble error on the way)
    errors = _failed_with(loaded, answer.json()["id"])
    assert "Unable to find" not in errors and "collect:" in errors


def test_a_trigger_input_that_cannot_render_refuses_the_call(fake: FakeKestra) -> None:
    triggers = (
        "triggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n"
        "    key: \"{{ secret('DEVOPS_LOOP_WEBHOOK_KEY') }}\"\n"
        "    inputs:\n      who: \"{{ trigger.body.who }}\"\n"
    )
    source = _flow("  - id: who\n    type: STRING\n", triggers=triggers)
    assert _post_flow(fake, source).status_code == 200
    url = fake.url + fake.webhook_path("probe")
    assert requests.post(url, json={"who": "ann"}, timeout=10).status_code == 200
    refused = requests.post(url, json={"someone": "else"}, timeout=10)  # 1.x: "No execution triggered"
    assert refused.status_code == 404 and "Unable to find `who`" in refused.json()["message"]


# -- the webhook is open on a default Kestra ---------------------------------------------------------
def test_the_webhook_path_is_open_by_default_and_only_the_key_guards_it(loaded: FakeKestra) -> None:
    path = loaded.webhook_path("devops-loop")
    wrong_key = path.rsplit("/", 1)[0] + "/guessed-key"
    assert requests.post(loaded.url + wrong_key, json={}, timeout=10).status_code == 404
    assert requests.post(loaded.url + path, json={"scenario": "x"}, timeout=10).status_code == 200
    # the rest of the API needs the login
    assert requests.get(f"{loaded.url}/api/v1/main/executions/search", timeout=10).status_code == 401
    # a Kestra whose open-urls leave the webhook out asks for it there too
    loaded.open_urls = ("/ping",)
    assert requests.post(loaded.url + path, json={}, timeout=10).status_code == 401


# -- kill: Kestra's content type and 202 -------------------------------------------------------------
def test_kill_produces_text_json_only(loaded: FakeKestra, client: KestraClient) -> None:
    execution = client.trigger(NS, "devops-loop", {"scenario": "memory-leak"})
    loaded.wait_state(execution.id, {"PAUSED"})
    path = f"/executions/{execution.id}/kill"
    refused = _api(loaded, "DELETE", path, headers={"Accept": "application/json"})
    assert refused.status_code == 406 and "Supported types: [text/json]" in refused.json()["message"]
    assert loaded.executions[execution.id]["state"]["current"] == "PAUSED"
    killed = _api(loaded, "DELETE", path, headers={"Accept": "text/json"})
    assert killed.status_code == 202 and killed.headers["Content-Type"] == "text/json"
    assert loaded.wait_state(execution.id, {"KILLED"})["state"]["current"] == "KILLED"


def test_kill_of_a_finished_execution_is_202_with_cascade_and_409_without(
    loaded: FakeKestra, client: KestraClient
) -> None:
    execution = client.trigger(NS, "devops-loop", {"scenario": "healthy-hotfix"})
    loaded.wait_state(execution.id, {"SUCCESS"})
    path = f"/executions/{execution.id}/kill"
    cascade = {"isOnKillCascade": "true"}
    accepted = _api(loaded, "DELETE", path, params=cascade, headers={"Accept": "text/json"})
    assert accepted.status_code == 202
    assert loaded.executions[execution.id]["state"]["current"] == "SUCCESS"  # nothing happened
    refused = _api(loaded, "DELETE", path, params={"isOnKillCascade": "false"}, headers={"Accept": "*/*"})
    assert refused.status_code == 409 and "already finished" in refused.json()["message"]
    assert _api(loaded, "DELETE", "/executions/0000000000000000000000/kill").status_code == 404


# -- NON_NULL outputs ------------------------------------------------------------------------------------
def test_flow_outputs_lose_null_values_task_vars_keep_them(
    loaded: FakeKestra, client: KestraClient
) -> None:
    execution = client.trigger(NS, "devops-loop", {"scenario": "healthy-hotfix"})
    loaded.wait_state(execution.id, {"SUCCESS"})
    child = next(e for e in loaded.executions.values() if e["flowId"] == "collect-snapshot")
    run = next(r for r in child["taskRunList"] if r["taskId"] == "collect")  # the one look of a scenario
    assert run["outputs"]["vars"]["verification"] is None  # TaskRun.outputs: @JsonInclude(ALWAYS)
    assert "verification" not in child["outputs"] and "snapshot" in child["outputs"]  # typedOutputs


# -- SELECT and BOOL as Kestra parses them -------------------------------------------------------------
SELECTS = (
    "  - id: optional_level\n    type: SELECT\n    values: [LOW, HIGH]\n    required: false\n"
    "  - id: level\n    type: SELECT\n    values: [LOW, HIGH]\n"
    "  - id: flag\n    type: BOOL\n    required: false\n"
    "  - id: ratio\n    type: FLOAT\n    required: false\n"
)


def test_select_and_bool_inputs_parse_as_kestra_does(fake: FakeKestra) -> None:
    assert _post_flow(fake, _flow(SELECTS)).status_code == 200

    def launch(**parts: str) -> requests.Response:
        return _api(fake, "POST", f"/executions/{NS}/probe", files={k: (None, v) for k, v in parts.items()})

    refused = launch(level="MEDIUM")  # a required SELECT must match its values
    assert refused.status_code == 422
    assert "it must match the values `['LOW', 'HIGH']`" in refused.json()["message"]
    accepted = launch(level="LOW", optional_level="BOGUS", flag="yes", ratio="0.1234567891")
    assert accepted.status_code == 200, accepted.text
    inputs = accepted.json()["inputs"]
    assert inputs["optional_level"] == "BOGUS"  # SelectInput.validate checks only a required input
    assert inputs["flag"] is False  # Boolean.valueOf: anything but "true" is false, never an error
    assert inputs["ratio"] == 0.12345679  # Float.valueOf: 32 bits
    assert launch(level="HIGH", flag="TRUE").json()["inputs"]["flag"] is True
    missing = launch(optional_level="LOW")
    assert missing.status_code == 422 and "Missing required input: `level`" in missing.json()["message"]


def test_a_non_boolean_approval_is_a_rejection(loaded: FakeKestra, client: KestraClient) -> None:
    """What the console must never send: Kestra takes `approved=yes` as false (Boolean.valueOf)."""
    execution = client.trigger(NS, "devops-loop", {"scenario": "memory-leak"})
    loaded.wait_state(execution.id, {"PAUSED"})
    resumed = _api(
        loaded, "POST", f"/executions/{execution.id}/resume",
        files={"approved": (None, "yes"), "approver": (None, "bob")},
    )  # fmt: skip
    assert resumed.status_code == 204
    done = loaded.wait_state(execution.id, {"SUCCESS", "FAILED"})
    approval = next(r for r in done["taskRunList"] if r["taskId"] == "approval")
    assert approval["outputs"]["onResume"]["approved"] is False
    assert done["outputs"]["deployment_status"] != "rolled back"


# -- LoopUntil, timer Pauses and the outputs of a task that runs several times ---------------------------
def test_outputs_of_repeated_runs_merge_as_kestras_map_utils_does() -> None:
    from console.engines.kestra.rules import merge_outputs

    first = {
        "look": {"vars": {"done": False, "watch": "a", "notes": ["x"], "links": {"m": "1"}, "snapshot": None}}
    }
    second = {
        "look": {
            "vars": {"done": True, "watch": None, "notes": ["x", "y"], "links": {"n": "2"}, "snapshot": {}}
        }
    }
    merged = merge_outputs(first, second)["look"]["vars"]
    # the latest scalar wins, a null never replaces a value, lists join, maps merge
    assert merged == {
        "done": True,
        "watch": "a",
        "notes": ["x", "y"],
        "links": {"m": "1", "n": "2"},
        "snapshot": {},
    }


LOOKS = """  - id: watch
    type: io.kestra.plugin.core.flow.LoopUntil
    condition: "{{ outputs.collect.vars.done }}"
    failOnMaxReached: true
    checkFrequency:
      interval: PT0.05S
      maxDuration: PT1M
    tasks:
      - id: collect
        type: io.kestra.plugin.scripts.python.Commands
        containerImage: devops-loop-console:latest
        inputFiles:
          input.json: |
            {"service": "demo-service", "version": "v2", "deployment_id": "d1",
             "watch": {{ (outputs.collect.vars.watch ?? null) | toJson }}}
        commands:
          - python -m console step collect {{ workingDir }}/input.json --kestra
      - id: look_again
        type: io.kestra.plugin.core.flow.If
        condition: "{{ not outputs.collect.vars.done }}"
        then:
          - id: wait
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: "{{ outputs.collect.vars.wait }}"
            behavior: RESUME
"""


def test_a_watch_loops_one_look_per_round_with_a_timer_pause_between(
    fake: FakeKestra, tmp_path: Path
) -> None:
    from tests.conftest import logs_only_service

    services, _ = logs_only_service(tmp_path, lines=3)
    fake.settings = Settings(data_dir=tmp_path / "fake-data", services_file=services, live_poll_s=0.1)
    assert _post_flow(fake, f"id: looks\nnamespace: {NS}\ntasks:\n{LOOKS}").status_code == 200
    execution = _api(fake, "POST", f"/executions/{NS}/looks", files={})
    done = fake.wait_state(execution.json()["id"], {"SUCCESS", "FAILED", "KILLED"})
    assert done["state"]["current"] == "SUCCESS", fake.logs[done["id"]]
    runs = done["taskRunList"]
    looks = [r for r in runs if r["taskId"] == "collect"]
    timers = [r for r in runs if r["taskId"] == "wait"]
    assert len(looks) >= 2 and len(timers) == len(looks) - 1  # a timer between two looks, none after
    assert [r["iteration"] for r in looks] == list(range(1, len(looks) + 1))
    assert (
        all(r["outputs"]["vars"]["done"] is False for r in looks[:-1])
        and looks[-1]["outputs"]["vars"]["done"]
    )
    assert looks[-1]["outputs"]["vars"]["verification"]["ended"] == "window end"
    loop = next(r for r in runs if r["taskId"] == "watch")
    assert loop["outputs"] == {"iterationCount": len(looks)}
    # each timer paused the execution, then Kestra resumed it: PAUSED, then RUNNING again
    states = [h["state"] for h in done["state"]["histories"]]
    assert states.count("PAUSED") == len(timers) and states[-1] == "SUCCESS"


def test_a_loop_that_reaches_its_limit_fails_with_fail_on_max_reached(fake: FakeKestra) -> None:
    never = LOOKS.replace('"{{ outputs.collect.vars.done }}"', '"{{ outputs.collect.vars.done and false }}"')
    never = never.replace("maxDuration: PT1M", "maxDuration: PT1M\n      maxIterations: 2")
    never = never.replace(
        '"service": "demo-service", "version": "v2", "deployment_id": "d1",', '"scenario": "healthy-hotfix",'
    )
    assert _post_flow(fake, f"id: bounded\nnamespace: {NS}\ntasks:\n{never}").status_code == 200
    execution = _api(fake, "POST", f"/executions/{NS}/bounded", files={})
    assert "Max iterations or duration reached" in _failed_with(fake, execution.json()["id"])


def test_killing_a_watch_in_its_timer_pause_ends_it(fake: FakeKestra, tmp_path: Path) -> None:
    from tests.conftest import logs_only_service

    services, _ = logs_only_service(tmp_path, lines=3)
    slow = services.read_text(encoding="utf-8").replace("verify_s: 0.3", "verify_s: 60")
    services.write_text(slow, encoding="utf-8")
    fake.settings = Settings(data_dir=tmp_path / "fake-data", services_file=services, live_poll_s=30)
    assert _post_flow(fake, f"id: looks\nnamespace: {NS}\ntasks:\n{LOOKS}").status_code == 200
    execution_id = _api(fake, "POST", f"/executions/{NS}/looks", files={}).json()["id"]
    paused = fake.wait_state(execution_id, {"PAUSED"})
    assert [r["taskId"] for r in paused["taskRunList"] if r["state"]["current"] == "PAUSED"] == ["wait"]
    killed = _api(fake, "DELETE", f"/executions/{execution_id}/kill", headers={"Accept": "text/json"})
    assert killed.status_code == 202
    done = fake.wait_state(execution_id, {"KILLED"})
    assert not [r for r in done["taskRunList"] if r["taskId"] == "collect" and r.get("iteration") == 2]
