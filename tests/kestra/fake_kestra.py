"""A small Kestra server for tests: Kestra's REST API (1.3 LTS paths, or 2.x by a switch) on
127.0.0.1, following /work/shared/kestra/README.md and the OpenAPI specs there.

What it does like Kestra: tenant paths (``/api/v1/main/...``), mandatory basic auth (401 without or
with wrong credentials; ``/api/v1/configs`` is open), flows created/updated/validated from YAML,
executions created from multipart/form-data inputs typed by the flow's declared inputs, search with
``filters[...]`` and paging from 1 (``{"results", "total"}``; 2.x items carry no task runs), logs,
resume with multipart ``onResume`` inputs (409 unless PAUSED; 204 in 1.x, 200 + execution in 2.x),
kill (404 unknown, 409 finished), and 2.x ``/outputs/{executionId}``.

It runs the loop the way ``flows/devops-loop.yaml`` describes it (and the incident path of
``flows/incident-handler.yaml``), with the project's own steps
(``console.loop.steps``) in-process: subflows become child executions (``parentId``), Commands tasks
expose ``{"vars": ...}``, the ``approval`` Pause pauses the execution, and the pause's duration
expiring applies its ``behavior`` (CANCEL/FAIL); ``execute``, ``verify`` and ``record`` follow it.
A live deployment (the inputs, or a webhook body such as the demo deployer's announcement) is
collected from the sources of ``settings.services_file``, as the flow's tasks would. Fault modes
for tests: ``down()``, and ``fault = "slow" | "401" | "404" | "500" | "malformed"``, or
``"503 once"`` (the next request only).
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import json
import re
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from console.domain.models import format_time
from console.settings import Settings
from tests.kestra.flow_rules import check_documents

LIVE_INPUTS = (
    "deployment_id",
    "service",
    "version",
    "previous_version",
    "deployed_at",
    "deployed_by",
    "source",
)
"""The devops-loop inputs (and webhook body keys) of a live deployment."""
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def kestra_id() -> str:
    """Kestra's ids are 22 base62 characters."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(22))


def _now() -> str:
    return format_time(datetime.now(UTC))


def _iso_seconds(text: str) -> float:
    m = re.match(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$", text or "")
    if not m:
        return 0.0
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _state(current: str) -> dict[str, Any]:
    now = _now()
    return {"current": current, "histories": [{"state": current, "date": now}], "startDate": now}


def _move(state: dict[str, Any], new: str) -> None:
    now = _now()
    state["current"] = new
    state["histories"].append({"state": new, "date": now})
    if new in TERMINAL or new == "PAUSED":
        state["endDate"] = now
        start = datetime.fromisoformat(state["startDate"].replace("Z", "+00:00"))
        state["duration"] = f"PT{(datetime.now(UTC) - start).total_seconds():.3f}S"
    else:
        state.pop("endDate", None)
        state.pop("duration", None)


class FakeKestra:
    def __init__(
        self,
        *,
        version: str = "1.3.21",
        username: str = "admin@devops-loop.local",
        password: str = "Fake-Kestra-Pass1",
        settings: Settings | None = None,
        pause_seconds: float | None = None,
    ) -> None:
        self.version = version
        self.username = username
        self.password = password
        self.settings = settings or Settings()
        self.pause_seconds = pause_seconds  # overrides the flows' pauseDuration (tests of expiry)
        self.token: str | None = None  # set to accept `Authorization: Bearer <token>`
        self.webhook_key = "fake-webhook-key-1234"  # the decoded SECRET_DEVOPS_LOOP_WEBHOOK_KEY
        self.fault: str | None = None
        self.slow_seconds = 3.0
        self.flows: dict[tuple[str, str], dict[str, Any]] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._resume_events: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKestra:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-kestra"
        ).start()
        return self

    def down(self) -> None:
        """Close the port: clients now get 'connection refused'."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:  # and drop kept-alive connections, as a dead server does
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def stop(self) -> None:
        self.down()
        with self.lock:
            for event in self._resume_events.values():
                event.set()

    def deploy_dir(self, flows_dir: Path) -> None:
        """Load flows directly (like ``server standalone --flow-path``)."""
        sources = [p.read_text(encoding="utf-8") for p in sorted(flows_dir.glob("*.yaml"))]
        for source in sorted(sources, key=lambda s: "io.kestra.plugin.core.flow.Subflow" in s):
            self._store_flow(source, create=True, update=True)

    def wait_state(self, execution_id: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                ex = self.executions.get(execution_id)
                if ex and ex["state"]["current"] in states:
                    return json.loads(json.dumps(ex))
            time.sleep(0.02)
        raise AssertionError(f"{execution_id} did not reach {states}")

    # ------------------------------------------------------------------ flows
    def _store_flow(
        self, source: str, *, create: bool, update: bool, path_ref: tuple[str, str] | None = None
    ):
        try:
            doc = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise HttpError(422, f"Invalid yaml: {str(exc).splitlines()[0]}") from None
        if not isinstance(doc, dict) or "id" not in doc or "namespace" not in doc:
            raise HttpError(422, "Invalid entity: flow must have an id and a namespace")
        ref = (doc["namespace"], doc["id"])
        if path_ref is not None and path_ref != ref:
            raise HttpError(422, "Illegal argument: namespace and id of the body must match the path")
        known = {f"{k[1]}.yaml": v["doc"] for k, v in self.flows.items()}
        problems = check_documents({f"{doc['id']}.yaml": doc}, known=known)
        if problems:
            raise HttpError(422, "Invalid entity: " + problems[0].split(": ", 1)[-1])
        with self.lock:
            existing = self.flows.get(ref)
            if existing and not update:
                raise HttpError(422, f"Invalid entity: flow id '{ref[1]}' already exists")
            if not existing and not create:
                raise HttpError(404, f"Flow '{ref[0]}.{ref[1]}' not found")
            revision = (existing["revision"] + 1) if existing else 1
            self.flows[ref] = {"doc": doc, "source": source, "revision": revision}
        return {**doc, "revision": revision, "source": source, "tenantId": "main", "deleted": False}

    def validate(self, body: str) -> list[dict[str, Any]]:
        out = []
        known = {f"{k[1]}.yaml": v["doc"] for k, v in self.flows.items()}
        try:
            docs = list(yaml.safe_load_all(body))
        except yaml.YAMLError as exc:
            return [{"index": 0, "constraints": f"Invalid yaml: {str(exc).splitlines()[0]}", "warnings": []}]
        batch = {f"{d.get('id')}.yaml": d for d in docs if isinstance(d, dict)}
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                out.append({"index": i, "constraints": "flow must be a mapping", "warnings": []})
                continue
            problems = check_documents({f"{doc.get('id')}.yaml": doc}, known={**known, **batch})
            out.append(
                {
                    "index": i,
                    "namespace": doc.get("namespace"),
                    "flow": doc.get("id"),
                    "constraints": "\n".join(p.split(": ", 1)[-1] for p in problems) or None,
                    "outdated": False,
                    "deprecationPaths": [],
                    "warnings": [],
                    "infos": [],
                }
            )
        return out

    # ------------------------------------------------------------------ executions
    def _flow(self, namespace: str, flow_id: str) -> dict[str, Any]:
        flow = self.flows.get((namespace, flow_id))
        if flow is None:
            raise HttpError(404, f"Flow '{namespace}.{flow_id}' not found")
        return flow

    def _typed_inputs(
        self, declared: list[dict[str, Any]], given: dict[str, str], what: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in declared:
            name, kind = spec["id"], spec["type"]
            if name not in given or given[name] == "":
                if "defaults" in spec:
                    out[name] = spec["defaults"]
                elif spec.get("required", True):
                    raise HttpError(
                        422, f"Invalid {what} for `{name}`, missing required input, but received `null`"
                    )
                else:
                    out[name] = None
                continue
            raw = given[name]
            try:
                if kind == "BOOLEAN":
                    if raw.lower() not in {"true", "false"}:
                        raise ValueError(raw)
                    out[name] = raw.lower() == "true"
                elif kind == "INT":
                    out[name] = int(raw)
                elif kind == "FLOAT":
                    out[name] = float(raw)
                elif kind == "JSON":
                    out[name] = json.loads(raw)
                elif kind == "SELECT":
                    if raw not in spec.get("values", []):
                        raise ValueError(raw)
                    out[name] = raw
                else:
                    out[name] = raw
            except ValueError:
                raise HttpError(
                    422, f"Invalid {what} for `{name}`, `{raw[:40]}` is not a valid {kind}"
                ) from None
        return out

    def _new_execution(
        self, namespace: str, flow_id: str, inputs: dict[str, Any], labels: dict[str, str], parent: str | None
    ) -> dict[str, Any]:
        flow = self._flow(namespace, flow_id)
        now = _now()
        ex_id = kestra_id()
        flow_labels = flow["doc"].get("labels") or {}
        all_labels = {**{str(k): str(v) for k, v in flow_labels.items()}, **labels}
        execution = {
            "id": ex_id,
            "namespace": namespace,
            "flowId": flow_id,
            "flowRevision": flow["revision"],
            "tenantId": "main",
            "deleted": False,
            "inputs": inputs,
            "outputs": {},
            "labels": [{"key": k, "value": v} for k, v in all_labels.items()],
            "state": _state("CREATED"),
            "taskRunList": [],
            "originalId": ex_id,
            "metadata": {"attemptNumber": 1, "originalCreatedDate": now},
        }
        if parent:
            execution["parentId"] = parent
        with self.lock:
            self.executions[ex_id] = execution
            self.logs[ex_id] = []
        return execution

    def trigger(
        self, namespace: str, flow_id: str, given: dict[str, str], labels: dict[str, str]
    ) -> dict[str, Any]:
        flow = self._flow(namespace, flow_id)
        inputs = self._typed_inputs(flow["doc"].get("inputs") or [], given, "input")
        execution = self._new_execution(namespace, flow_id, inputs, labels, None)
        self._start(execution)
        return execution

    def _start(self, execution: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(execution["id"],), daemon=True)
        self._threads.append(thread)
        thread.start()

    def webhook(self, namespace: str, flow_id: str, key: str, body: bytes) -> dict[str, Any]:
        """POST /executions/webhook/{namespace}/{flowId}/{key}: 404 unless a Webhook trigger of
        the flow has this key; the JSON body becomes ``trigger.body`` (inputs keep their defaults)."""
        flow = self._flow(namespace, flow_id)
        trigger = next(
            (
                t
                for t in flow["doc"].get("triggers") or []
                if t.get("type") == "io.kestra.plugin.core.trigger.Webhook"
            ),
            None,
        )
        expected = (
            self.webhook_key if trigger and "{{" in str(trigger.get("key")) else (trigger or {}).get("key")
        )
        if trigger is None or not secrets.compare_digest(str(expected), key):
            raise HttpError(404, "Not Found: flow or webhook key not found")
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = body.decode("utf-8", "replace")
        inputs = self._typed_inputs(flow["doc"].get("inputs") or [], {}, "input")
        execution = self._new_execution(namespace, flow_id, inputs, {}, None)
        execution["trigger"] = {
            "id": trigger["id"],
            "type": trigger["type"],
            "variables": {"body": payload, "headers": {}, "parameters": {}},
        }
        self._start(execution)
        return execution

    def _log(
        self, execution: dict[str, Any], level: str, message: str, task_run: dict[str, Any] | None
    ) -> None:
        with self.lock:
            self.logs[execution["id"]].append(
                {
                    "namespace": execution["namespace"],
                    "flowId": execution["flowId"],
                    "taskId": task_run["taskId"] if task_run else None,
                    "executionId": execution["id"],
                    "taskRunId": task_run["id"] if task_run else None,
                    "attemptNumber": 0 if task_run else None,
                    "timestamp": _now(),
                    "level": level,
                    "thread": "worker",
                    "message": message,
                }
            )

    def _task_run(
        self, execution: dict[str, Any], task_id: str, parent_run: str | None = None
    ) -> dict[str, Any]:
        run = {
            "id": kestra_id(),
            "executionId": execution["id"],
            "namespace": execution["namespace"],
            "flowId": execution["flowId"],
            "taskId": task_id,
            "state": _state("CREATED"),
            "outputs": {},
            "attempts": [],
        }
        if parent_run:
            run["parentTaskRunId"] = parent_run
        with self.lock:
            execution["taskRunList"].append(run)
            _move(run["state"], "RUNNING")
        return run

    def _alive(self, execution: dict[str, Any]) -> bool:
        return execution["state"]["current"] not in TERMINAL and execution["state"]["current"] != "KILLING"

    def _gate_execute_verify_record(
        self,
        ex: dict[str, Any],
        *,
        needs_approval: Any,
        snapshot: dict[str, Any],
        decision: dict[str, Any],
        decided: dict[str, Any],
        collected: dict[str, Any],
        scenario: Any,
        record_extra: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The tail both flows share: the approval gate (a Pause when needed), then execute, verify
        and record with the flows' inputs; returns the outputs of execute, verify and record."""
        gate = self._task_run(ex, "approval_gate")
        approval: dict[str, Any] | None = None
        if needs_approval:
            approval = self._pause(ex, gate)
        with self.lock:
            gate["outputs"] = {}
            _move(gate["state"], "SUCCESS")
        self._check(ex)
        target = {
            "deployment": snapshot["deployment"],
            "scenario": scenario,
            "verification": collected.get("verification"),
        }
        executed = self._step(
            ex,
            "execute",
            "execute",
            {
                "plan": decided["plan"],
                "verdict": decided["verdict"],
                "approval": approval,
                **target,
                "execution_id": ex["id"],
            },
        )
        self._check(ex)
        verified = self._step(ex, "verify", "verify", {**target, "executed": executed["executed"]})
        self._check(ex)
        recorded = self._step(
            ex,
            "record",
            "record",
            {
                "execution_id": ex["id"],
                "snapshot": snapshot,
                "decision": decision,
                "plan": decided["plan"],
                "approval": approval,
                "executed": executed["executed"],
                "deployment_status": executed["deployment_status"],
                "measured": verified["measured"],
                **(record_extra or {}),
            },
        )
        return executed, verified, recorded

    def _step(
        self, execution: dict[str, Any], task_id: str, step: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """A Commands task running ``python -m console step <step>``: outputs under ``vars``."""
        from console.loop.steps import run_step

        run = self._task_run(execution, task_id)
        run["attempts"] = [{"state": _state("RUNNING")}]
        self._log(execution, "INFO", f"python -m console step {step} input.json --kestra", run)
        try:
            # the CLI's JSON round trip, so the step sees what a container would
            values = json.loads(json.dumps(run_step(step, json.loads(json.dumps(payload)), self.settings)))
        except Exception as exc:
            with self.lock:
                _move(run["state"], "FAILED")
                _move(run["attempts"][0]["state"], "FAILED")
            self._log(execution, "ERROR", f"Command failed with exit code 1: {exc}", run)
            raise
        with self.lock:
            run["outputs"] = {"vars": values, "exitCode": 0}
            _move(run["attempts"][0]["state"], "SUCCESS")
            _move(run["state"], "SUCCESS")
        self._log(execution, "INFO", f"step {step} done", run)
        return values

    def _subflow(
        self, parent: dict[str, Any], task_id: str, flow_id: str, inputs: dict[str, Any], body
    ) -> dict[str, Any]:
        """A Subflow task (wait: true, transmitFailed: true): a child execution with parentId."""
        run = self._task_run(parent, task_id)
        child = self._new_execution(parent["namespace"], flow_id, inputs, {}, parent["id"])
        with self.lock:
            _move(child["state"], "RUNNING")
        try:
            outputs = body(child)
        except Exception:
            with self.lock:
                _move(child["state"], "FAILED")
                run["outputs"] = {"executionId": child["id"], "state": "FAILED"}
                _move(run["state"], "FAILED")
            raise
        with self.lock:
            child["outputs"] = outputs
            _move(child["state"], "SUCCESS")
            run["outputs"] = {"executionId": child["id"], "state": "SUCCESS", "outputs": outputs}
            _move(run["state"], "SUCCESS")
        return outputs

    def _run(self, execution_id: str) -> None:
        execution = self.executions[execution_id]
        with self.lock:
            _move(execution["state"], "RUNNING")
        try:
            if (execution["namespace"], execution["flowId"]) == ("devops.loop", "devops-loop"):
                self._devops_loop(execution)
            elif (execution["namespace"], execution["flowId"]) == ("devops.loop", "incident-handler"):
                self._incident_handler(execution)
            else:
                raise RuntimeError(f"the fake cannot run {execution['flowId']}")
        except _Stopped:
            return
        except Exception as exc:
            self._log(execution, "ERROR", f"{type(exc).__name__}: {exc}", None)
            with self.lock:
                if self._alive(execution):
                    _move(execution["state"], "FAILED")

    def _check(self, execution: dict[str, Any]) -> None:
        with self.lock:
            if execution["state"]["current"] == "KILLING":
                _move(execution["state"], "KILLED")
                for run in execution["taskRunList"]:
                    if run["state"]["current"] not in TERMINAL:
                        _move(run["state"], "KILLED")
                raise _Stopped
            if not self._alive(execution):
                raise _Stopped

    def _devops_loop(self, ex: dict[str, Any]) -> None:
        body = (ex.get("trigger") or {}).get("variables", {}).get("body")
        body = body if isinstance(body, dict) else {}
        # the flow's `{{ inputs.x ?? trigger.body.x }}`
        inputs = {k: ex["inputs"].get(k) if ex["inputs"].get(k) is not None else body.get(k)
                  for k in (*LIVE_INPUTS, "scenario", "snapshot")}  # fmt: skip
        # collect-snapshot's `is not empty` tests: null, "" and {} all mean "not given"
        if inputs.get("snapshot"):
            collect_in = {"snapshot": inputs["snapshot"]}
        elif inputs.get("scenario"):
            collect_in = {"scenario": inputs["scenario"]}
        else:
            collect_in = {k: inputs.get(k) for k in LIVE_INPUTS}

        def collect(child: dict[str, Any]) -> dict[str, Any]:
            values = self._step(child, "collect", "collect", collect_in)
            return {"snapshot": values["snapshot"], "verification": values.get("verification")}

        collected = self._subflow(
            ex,
            "collect",
            "collect-snapshot",
            {k: inputs.get(k) for k in (*LIVE_INPUTS, "scenario", "snapshot")},
            collect,
        )
        snapshot = collected["snapshot"]
        self._check(ex)

        def summarize(child: dict[str, Any]) -> dict[str, Any]:
            rules = self._step(child, "analyze", "analyze", {"snapshot": snapshot})["decision"]
            return {
                "decision": self._step(
                    child, "summarize", "summarize", {"snapshot": snapshot, "decision": rules}
                )["decision"]
            }

        decision = self._subflow(ex, "summarize", "summarize-incident", {"snapshot": snapshot}, summarize)[
            "decision"
        ]
        self._check(ex)

        def decide(child: dict[str, Any]) -> dict[str, Any]:
            values = self._step(child, "decide", "decide", {"decision": decision})
            return {
                "plan": values["plan"],
                "needs_approval": bool(values["plan"].get("needs_approval")),
                "verdict": values["verdict"],
                "severity": values["severity"],
                "confidence": values["confidence"],
            }

        decided = self._subflow(ex, "decide", "decision-flow", {"decision": decision}, decide)
        self._check(ex)

        executed, verified, recorded = self._gate_execute_verify_record(
            ex,
            needs_approval=decided["needs_approval"],
            snapshot=snapshot,
            decision=decision,
            decided=decided,
            collected=collected,
            scenario=snapshot.get("scenario"),
        )
        with self.lock:
            ex["outputs"] = {
                "verdict": decided["verdict"],
                "severity": decided["severity"],
                "decision": decision,
                "plan": decided["plan"],
                "deployment_status": executed["deployment_status"],
                "measured": verified["measured"],
                "outcome": recorded.get("outcome"),
            }
            if self._alive(ex):
                _move(ex["state"], "SUCCESS")

    def _incident_handler(self, ex: dict[str, Any]) -> None:
        """``flows/incident-handler.yaml``: the steps as Commands tasks, the severity Switch (its
        ``escalate`` Log for HIGH/CRITICAL), the approval gate, then execute, verify, record."""
        inputs = ex["inputs"]
        body = (ex.get("trigger") or {}).get("variables", {}).get("body")
        incident = {
            "id": inputs.get("incident_id"),
            "service": inputs.get("service"),
            "severity": inputs.get("severity"),
            "starts_at": inputs.get("starts_at"),
            "alertname": inputs.get("alertname"),
            "summary": inputs.get("summary"),
            "fingerprint": inputs.get("fingerprint"),
            "labels": inputs.get("labels"),
            "deployment": {
                "id": inputs.get("deployment_id"),
                "version": inputs.get("version"),
                "previous_version": inputs.get("previous_version"),
                "deployed_at": inputs.get("deployed_at"),
                "deployed_by": inputs.get("deployed_by"),
            },
        }
        collected = self._step(ex, "collect", "collect", {"incident": incident, "alertmanager": body})
        snapshot = collected["snapshot"]
        self._check(ex)
        rules = self._step(ex, "analyze", "analyze", {"snapshot": snapshot})["decision"]
        self._check(ex)
        decision = self._step(ex, "summarize", "summarize", {"snapshot": snapshot, "decision": rules})[
            "decision"
        ]
        self._check(ex)
        decided = self._step(
            ex, "decide", "decide", {"decision": decision, "incident": collected["incident"]}
        )
        self._check(ex)
        routing = decided["routing"]
        switch = self._task_run(ex, "route")
        case = {"LOW": "route_low", "MEDIUM": "route_medium"}.get(routing["severity"], "escalate")
        log = self._task_run(ex, case, switch["id"])
        level = "ERROR" if case == "escalate" else "INFO"
        message = (
            f"ESCALATION {routing['severity']}: {collected['incident'].get('alertname') or 'incident'} on "
            f"{collected['incident']['service']} — paging on-call"
            if case == "escalate"
            else f"{routing['severity']}: routed {routing['route']}"
        )
        self._log(ex, level, message, log)
        with self.lock:
            _move(log["state"], "SUCCESS")
            switch["outputs"] = {"value": routing["severity"], "defaults": case == "escalate"}
            _move(switch["state"], "SUCCESS")
        executed, _verified, recorded = self._gate_execute_verify_record(
            ex,
            needs_approval=decided["plan"].get("needs_approval"),
            snapshot=snapshot,
            decision=decision,
            decided=decided,
            collected=collected,
            scenario=None,
            record_extra={"incident": collected["incident"], "routing": routing},
        )
        with self.lock:
            ex["outputs"] = {
                "verdict": decided["verdict"],
                "severity": routing["severity"],
                "routing": routing,
                "deployment_status": executed["deployment_status"],
                "outcome": recorded.get("outcome"),
            }
            if self._alive(ex):
                _move(ex["state"], "SUCCESS")

    def _approval_spec(self, ex: dict[str, Any]) -> dict[str, Any]:
        """The flow's ``approval`` Pause (inside its approval gate)."""
        flow = self._flow(ex["namespace"], ex["flowId"])["doc"]
        for task in flow["tasks"]:
            for child in [task, *(task.get("then") or [])]:
                if child.get("id") == "approval":
                    return child
        raise HttpError(409, f"flow {ex['flowId']} has no approval Pause")

    def _pause(self, ex: dict[str, Any], gate: dict[str, Any]) -> dict[str, Any]:
        spec = self._approval_spec(ex)
        run = self._task_run(ex, "approval", gate["id"])
        event = threading.Event()
        with self.lock:
            _move(run["state"], "PAUSED")
            _move(ex["state"], "PAUSED")
            self._resume_events[ex["id"]] = event
        self._log(ex, "INFO", "Execution paused, waiting for resume (approval)", run)
        limit = self.pause_seconds if self.pause_seconds is not None else _iso_seconds(spec["pauseDuration"])
        resumed = event.wait(limit)
        with self.lock:
            self._resume_events.pop(ex["id"], None)
            if ex["id"] not in self.executions:  # deleted while it waited
                raise _Stopped
            if ex["state"]["current"] == "KILLING":
                raise self._killed(ex)
            if not resumed:  # pauseDuration expired: the flow's behavior decides
                final = {"CANCEL": "CANCELLED", "FAIL": "FAILED"}.get(spec.get("behavior", "RESUME"))
                if final is None:  # Kestra's default RESUME: what the flows must never rely on
                    run["outputs"] = {"onResume": {}, "resumed": None}
                    _move(run["state"], "SUCCESS")
                    _move(ex["state"], "RUNNING")
                    return {}
                _move(run["state"], final)
                _move(gate["state"], final)
                _move(ex["state"], final)
                self._log(ex, "WARN", f"Pause duration expired: execution {final}", run)
                raise _Stopped
            return run["outputs"]["onResume"]

    def _killed(self, ex: dict[str, Any]) -> _Stopped:
        _move(ex["state"], "KILLED")
        for run in ex["taskRunList"]:
            if run["state"]["current"] not in TERMINAL:
                _move(run["state"], "KILLED")
        return _Stopped()

    def resume(self, execution_id: str, given: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            ex = self.executions.get(execution_id)
            if ex is None:
                raise HttpError(404, f"Execution '{execution_id}' not found")
            if ex["state"]["current"] != "PAUSED":
                raise HttpError(
                    409, f"Execution '{execution_id}' is not paused (state {ex['state']['current']})"
                )
            spec = self._approval_spec(ex)
            values = self._typed_inputs(spec.get("onResume") or [], given, "resume input")
            run = next(r for r in ex["taskRunList"] if r["taskId"] == "approval")
            run["outputs"] = {
                "onResume": values,
                "resumed": {"by": self.username, "on": _now(), "to": "RUNNING"},
            }
            _move(run["state"], "RUNNING")
            _move(run["state"], "SUCCESS")
            _move(ex["state"], "RUNNING")
            event = self._resume_events.get(execution_id)
        if event:
            event.set()
        return ex

    def kill(self, execution_id: str) -> dict[str, Any]:
        with self.lock:
            ex = self.executions.get(execution_id)
            if ex is None:
                raise HttpError(404, f"Execution '{execution_id}' not found")
            if ex["state"]["current"] in TERMINAL:
                raise HttpError(409, f"Execution '{execution_id}' is already finished")
            if ex["state"]["current"] == "PAUSED":
                _move(ex["state"], "KILLING")
                event = self._resume_events.get(execution_id)
                if event:
                    event.set()
            elif ex["state"]["current"] != "KILLING":
                _move(ex["state"], "KILLING")
        return ex

    # ------------------------------------------------------------------ JSON views
    def view(self, ex: dict[str, Any], *, light: bool = False) -> dict[str, Any]:
        with self.lock:
            doc = json.loads(json.dumps(ex))
        if self.major >= 2:
            for run in doc.get("taskRunList", []):
                run.pop("outputs", None)  # 2.x: read them from /outputs/{executionId}
            if light:
                doc.pop("taskRunList", None)
                doc.pop("deleted", None)
                doc.pop("metadata", None)
        return doc

    def delete(self, execution_id: str) -> None:
        """``DELETE /executions/{id}``: the execution is gone (an admin purged it)."""
        with self.lock:
            if self.executions.pop(execution_id, None) is None:
                raise HttpError(404, f"Execution '{execution_id}' not found")
            self.logs.pop(execution_id, None)
            event = self._resume_events.get(execution_id)
        if event is not None:  # a paused run: its runner thread ends quietly
            event.set()

    def search(self, params: list[tuple[str, str]]) -> dict[str, Any]:
        query: dict[str, list[str]] = {}
        for key, value in params:
            query.setdefault(key, []).append(value)
        try:
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("size", ["10"])[0])
        except ValueError:
            raise HttpError(400, "Illegal argument: page and size must be integers") from None
        if page < 1 or size < 1:
            raise HttpError(400, "Illegal argument: page and size must be at least 1")
        namespace = (query.get("filters[namespace][EQUALS]") or [None])[0]
        flow_id = (query.get("filters[flowId][EQUALS]") or [None])[0]
        states = (query.get("filters[state][IN]") or [""])[0]
        state_set = {s for s in states.split(",") if s}
        if self.major < 2:  # deprecated flat parameters still honoured by 1.x
            namespace = namespace or (query.get("namespace") or [None])[0]
            flow_id = flow_id or (query.get("flowId") or [None])[0]
            state_set |= set(query.get("state", []))
        labels = {k[len("filters[labels][EQUALS][") : -1]: v[0] for k, v in query.items()
                  if k.startswith("filters[labels][EQUALS][")}  # fmt: skip
        started_from = (query.get("filters[startDate][GREATER_THAN_OR_EQUAL_TO]") or [None])[0]
        if started_from is not None:
            try:
                since = datetime.fromisoformat(started_from.replace("Z", "+00:00"))
            except ValueError:
                raise HttpError(400, f"Illegal argument: invalid date '{started_from}'") from None
        with self.lock:
            items = list(self.executions.values())
        items = [
            e
            for e in items
            if (not namespace or e["namespace"] == namespace)
            and (not flow_id or e["flowId"] == flow_id)
            and (not state_set or e["state"]["current"] in state_set)
            and all({"key": k, "value": v} in e["labels"] for k, v in labels.items())
            and (
                started_from is None
                or datetime.fromisoformat(e["state"]["startDate"].replace("Z", "+00:00")) >= since
            )
        ]
        sort = (query.get("sort") or ["state.startDate:desc"])[0]
        field, _, direction = sort.partition(":")
        if field == "state.startDate":
            items.sort(key=lambda e: e["state"]["startDate"], reverse=direction != "asc")
        start = (page - 1) * size
        return {
            "results": [self.view(e, light=True) for e in items[start : start + size]],
            "total": len(items),
        }


class _Stopped(Exception):
    """The execution was killed or ended; the runner stops quietly."""


def _multipart(content_type: str, body: bytes) -> dict[str, str]:
    if not content_type.startswith("multipart/form-data"):
        raise HttpError(415, "Unsupported Media Type: multipart/form-data expected")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[str(name)] = part.get_payload(decode=True).decode("utf-8")
    return out


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeKestra
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server_fake.lock:
            self.server_fake._conns.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server_fake.lock:
            self.server_fake._conns.discard(self.connection)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(
        self, status: int, body: Any = None, *, raw: bytes | None = None, ctype: str = "application/json"
    ):
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Kestra"')
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        fake = self.server_fake
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and fake.token:  # API tokens (Enterprise Edition)
            return secrets.compare_digest(header[7:], fake.token)
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, fake.username) and secrets.compare_digest(password, fake.password)

    def _handle(self, method: str) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        path = parts.path
        params = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake.requests.append((method, path))
        fault = fake.fault
        if fault == "503 once":
            fake.fault = None
            return self._send(503, {"message": "warming up"})
        if fault == "slow":
            time.sleep(fake.slow_seconds)
        elif fault == "500":
            return self._send(500, {"message": "Internal Server Error: fake failure"})
        elif fault == "404":
            return self._send(404, {"message": "Not Found"})
        elif fault == "malformed":
            return self._send(200, raw=b'{"results": [ {"id": ')
        try:
            if path == "/api/v1/configs" and method == "GET":
                return self._send(
                    200,
                    {
                        "version": fake.version,
                        "commitId": "fake0000",
                        "url": fake.url,
                        "isBasicAuthInitialized": True,
                        "isAiEnabled": False,
                    },
                )
            if fault == "401" or not self._authorized():
                return self._send(401, {"message": "Unauthorized"})
            m = re.match(r"^/api/v1/([^/]+)(/.*)$", path)
            if not m:
                raise HttpError(404, "Page Not Found")
            if m.group(1) != "main":
                raise HttpError(404, f"Tenant '{m.group(1)}' not found")
            self._route(method, m.group(2), params, body)
        except HttpError as exc:
            self._send(exc.status, {"message": exc.message})
        except Exception as exc:  # a bug in the fake shows as a 500 the test will see
            self._send(500, {"message": f"fake error: {type(exc).__name__}: {exc}"})

    def _route(self, method: str, path: str, params: list[tuple[str, str]], body: bytes) -> None:
        fake = self.server_fake
        seg = [unquote(s) for s in path.strip("/").split("/")]
        ctype = self.headers.get("Content-Type", "")
        v2 = fake.major >= 2

        if seg == ["flows"] and method == "POST":
            return self._send(200, fake._store_flow(body.decode(), create=True, update=False))
        if seg == ["flows", "validate"] and method == "POST":
            return self._send(200, fake.validate(body.decode()))
        if len(seg) == 3 and seg[0] == "flows":
            ref = (seg[1], seg[2])
            if method == "PUT":
                if ref not in fake.flows:
                    raise HttpError(404, f"Flow '{ref[0]}.{ref[1]}' not found")
                return self._send(
                    200, fake._store_flow(body.decode(), create=False, update=True, path_ref=ref)
                )
            if method == "GET":
                flow = fake._flow(*ref)
                return self._send(
                    200, {**flow["doc"], "revision": flow["revision"], "source": flow["source"]}
                )
        if seg == ["executions", "search"] and method == "GET":
            return self._send(200, fake.search(params))
        resume = ["actions", "resume"] if v2 else ["resume"]
        kill = ["actions", "kill"] if v2 else ["kill"]
        if len(seg) >= 3 and seg[0] == "executions" and seg[2:] == resume and method == "POST":
            if not body:
                raise HttpError(400, "Required body is missing: the inputs")
            ex = fake.resume(seg[1], _multipart(ctype, body))
            return self._send(200, fake.view(ex)) if v2 else self._send(204)
        if len(seg) >= 3 and seg[0] == "executions" and seg[2:] == kill and method == "DELETE":
            ex = fake.kill(seg[1])
            return self._send(200, fake.view(ex)) if v2 else self._send(202)
        if len(seg) == 5 and seg[:2] == ["executions", "webhook"] and method in {"POST", "PUT", "GET"}:
            return self._send(200, fake.view(fake.webhook(seg[2], seg[3], seg[4], body)))
        if len(seg) == 3 and seg[0] == "executions" and method == "POST" and seg[1] != "webhook":
            labels = {}
            for key, value in params:
                if key == "labels":
                    k, sep, v = value.partition(":")
                    if not sep or not k:
                        raise HttpError(400, f"Illegal argument: invalid label '{value}'")
                    labels[k] = v
            given = _multipart(ctype, body) if body else {}
            execution = fake.trigger(seg[1], seg[2], given, labels)
            view = fake.view(execution)
            view["url"] = f"{fake.url}/ui/main/executions/{seg[1]}/{seg[2]}/{execution['id']}"
            return self._send(200, view)
        if len(seg) == 2 and seg[0] == "executions" and method == "DELETE" and seg[1] != "search":
            fake.delete(seg[1])
            return self._send(204)
        if len(seg) == 2 and seg[0] == "executions" and method == "GET":
            with fake.lock:
                ex = fake.executions.get(seg[1])
            if ex is None:
                raise HttpError(404, f"Execution '{seg[1]}' not found")
            return self._send(200, fake.view(ex))
        if len(seg) == 2 and seg[0] == "logs" and method == "GET":
            return self._send(200, self._logs(seg[1], params))
        if v2 and seg[0] == "outputs" and method == "GET" and len(seg) in (2, 3):
            with fake.lock:
                ex = fake.executions.get(seg[1])
                if ex is None:
                    raise HttpError(404, f"Execution '{seg[1]}' not found")
                runs = {r["id"]: r for r in ex["taskRunList"]}
                if len(seg) == 2:
                    return self._send(
                        200,
                        [
                            {"taskId": r["taskId"], "taskRunId": r["id"], "iteration": 0, "inline": True}
                            for r in runs.values()
                            if r.get("outputs")
                        ],
                    )
                if seg[2] not in runs:
                    raise HttpError(404, f"Task run '{seg[2]}' not found")
                return self._send(200, runs[seg[2]].get("outputs") or {})
        raise HttpError(404, f"Page Not Found: {method} {path}")

    def _logs(self, execution_id: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        fake = self.server_fake
        q = dict(params)
        levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
        if fake.major >= 2:
            min_level, task_id = q.get("filters[level][EQUALS]"), q.get("filters[taskId][EQUALS]")
        else:
            min_level, task_id = q.get("minLevel"), q.get("taskId")
        with fake.lock:
            if execution_id not in fake.executions:
                return []  # Kestra answers an empty list for an unknown execution
            logs = list(fake.logs.get(execution_id, []))
        if min_level in levels:
            logs = [entry for entry in logs if levels.index(entry["level"]) >= levels.index(min_level)]
        if task_id:
            logs = [entry for entry in logs if entry["taskId"] == task_id]
        return logs


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
