"""A small Kestra server for tests: Kestra's REST API (1.3 LTS paths, or 2.x by a switch) on
127.0.0.1, following /work/shared/kestra/README.md and the OpenAPI specs there, and never more
lenient than Kestra 1.3.

It **runs the flows as written**: every task property is rendered with the strict Pebble subset of
:mod:`console.engines.kestra.pebble` against the variables Kestra would give it (``inputs`` only
when the execution has some, ``trigger`` only for triggered executions, ``outputs`` of the tasks that
ran), and the Kestra rules of :mod:`console.engines.kestra.rules` decide the rest, each the same
implementation the flow linter uses:

- flows are refused on create, update and ``/flows/validate`` by the ``kestra/`` rules of
  :mod:`console.engines.kestra.flow_lint` (``InputValidator``, ``FlowValidator``, the types and
  properties); ``deploy_dir`` (Kestra's ``--flow-path`` loader) skips such a flow with a warning;
- inputs are resolved and typed as ``FlowInputOutput`` does (every declared input defined, null
  when not given; ``prefill`` never applied; BOOL is ``Boolean.valueOf``; an optional SELECT takes
  any value), for API launches, subflows, webhooks and Pause ``onResume``;
- a webhook execution has only the inputs its trigger declares (none without trigger ``inputs``);
  the webhook path is open, as Kestra's default ``open-urls`` leave it: the key is its only guard;
- a flow's outputs lose their null values (Jackson NON_NULL), task ``vars`` keep them;
- kill answers only ``Accept`` types the route produces (``text/json``; Micronaut answers 406), and
  202 for a finished execution when ``isOnKillCascade`` is true (409 only without cascade).

Tasks: ``Commands`` runs ``python -m console step NAME input.json --kestra`` in-process on the
rendered ``inputFiles`` (the project's own steps, ``console.loop.steps``); ``Subflow`` starts a child
execution (``parentId``) and waits; ``If``, ``Switch``, ``Log`` as documented; ``LoopUntil`` runs its
children round after round until its ``condition`` (1.3's ``io.kestra.plugin.core.flow.LoopUntil``);
``Pause`` pauses until resumed, killed, or its (rendered) ``pauseDuration`` applies its
``behavior``. A task that ran several times reads as its runs merged (``Execution.outputs()``,
``MapUtils.merge``). Secrets (``secret('X')``) come
from :attr:`FakeKestra.secrets`. Fault modes for tests: ``down()``, and ``fault = "slow" | "401" |
"404" | "500" | "malformed"``, or ``"503 once"`` (the next request only).
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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from console.domain.models import format_time
from console.engines.kestra import flow_lint, rules
from console.engines.kestra.jackson import without_nulls
from console.engines.kestra.pebble import PebbleError, render, render_value
from console.settings import Settings
from tests.waiting import patience

TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_STEP = re.compile(r"^python -m console step (\w+) (\S+) --kestra$")


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


class _TaskFailed(Exception):
    """A task failed: its run is FAILED and the reason logged; the execution fails."""


class _Stopped(Exception):
    """The execution was killed, cancelled or deleted; the runner stops quietly."""


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


def _random_key() -> str:
    """A webhook key as docs/kestra.md says to make one: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


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
        # Kestra secrets (SECRET_<NAME> env vars, base64-decoded): what `secret('NAME')` returns
        self.secrets: dict[str, str] = {
            "DEVOPS_LOOP_WEBHOOK_KEY": _random_key(),
            "INCIDENT_WEBHOOK_KEY": _random_key(),
            "DEMO_DEPLOYER_TOKEN": "",
            "TOGETHER_API_KEY": "",
        }
        self.open_urls: tuple[str, ...] = rules.DEFAULT_OPEN_URLS  # kestra.server.basic-auth.open-urls
        self.fault: str | None = None
        self.slow_seconds = 3.0
        self.flows: dict[tuple[str, str], dict[str, Any]] = {}
        self.skipped: list[str] = []  # what deploy_dir refused, as Kestra's --flow-path loader warns
        self.executions: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._resume_events: dict[str, threading.Event] = {}
        self._paused: dict[str, dict[str, Any]] = {}  # execution id -> the Pause task waiting
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
        """Load flows like ``server standalone --flow-path``: a flow Kestra refuses is skipped with a
        warning (:attr:`skipped`), so starting it later is a 404."""
        sources = [p.read_text(encoding="utf-8") for p in sorted(flows_dir.glob("*.yaml"))]
        for source in sorted(sources, key=lambda s: "io.kestra.plugin.core.flow.Subflow" in s):
            try:
                self._store_flow(source, create=True, update=True)
            except HttpError as exc:
                self.skipped.append(exc.message)

    def wait_state(self, execution_id: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + patience(timeout)
        while time.monotonic() < deadline:
            with self.lock:
                ex = self.executions.get(execution_id)
                if ex and ex["state"]["current"] in states:
                    return json.loads(json.dumps(ex))
            time.sleep(0.02)
        raise AssertionError(f"{execution_id} did not reach {states}")

    def webhook_path(self, flow_id: str, namespace: str = "devops.loop") -> str:
        """``/api/v1/main/executions/webhook/<namespace>/<flow>/<key>`` with the key the flow's
        Webhook trigger renders (from :attr:`secrets`)."""
        flow = self._flow(namespace, flow_id)["doc"]
        trigger = next(t for t in flow.get("triggers") or [] if t.get("type") == flow_lint.WEBHOOK)
        key = render(str(trigger["key"]), {}, self._functions()).strip()
        return f"/api/v1/main/executions/webhook/{namespace}/{flow_id}/{key}"

    # ------------------------------------------------------------------ flows
    def _refusals(self, doc: Any, batch: Mapping[str, Any] | None = None) -> list[flow_lint.Violation]:
        """What Kestra refuses when it saves or validates this flow (the linter's ``kestra/`` rules)."""
        known = {f"{k[1]}.yaml": v["doc"] for k, v in self.flows.items()}
        name = f"{doc.get('id')}.yaml" if isinstance(doc, dict) else "flow.yaml"
        found = flow_lint.lint_documents({name: doc}, known={**known, **(batch or {})})
        return [v for v in found if v.refused_on_deploy]

    def _store_flow(
        self, source: str, *, create: bool, update: bool, path_ref: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            doc = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise HttpError(422, f"Invalid yaml: {str(exc).splitlines()[0]}") from None
        if not isinstance(doc, dict) or "id" not in doc or "namespace" not in doc:
            raise HttpError(422, "Invalid entity: flow must have an id and a namespace")
        ref = (doc["namespace"], doc["id"])
        if path_ref is not None and path_ref != ref:
            raise HttpError(422, "Illegal argument: namespace and id of the body must match the path")
        refused = self._refusals(doc)
        if refused:
            raise HttpError(422, f"Invalid entity: {refused[0].path}: {refused[0].message}")
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
        try:
            docs = list(yaml.safe_load_all(body))
        except yaml.YAMLError as exc:
            return [{"index": 0, "constraints": f"Invalid yaml: {str(exc).splitlines()[0]}", "warnings": []}]
        batch = {f"{d.get('id')}.yaml": d for d in docs if isinstance(d, dict)}
        out = []
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                out.append({"index": i, "constraints": "flow must be a mapping", "warnings": []})
                continue
            refused = self._refusals(doc, batch)
            out.append(
                {
                    "index": i,
                    "namespace": doc.get("namespace"),
                    "flow": doc.get("id"),
                    "constraints": "\n".join(f"{v.path}: {v.message}" for v in refused) or None,
                    "outdated": False,
                    "deprecationPaths": [],
                    "warnings": [],
                    "infos": [],
                }
            )
        return out

    def _flow(self, namespace: str, flow_id: str) -> dict[str, Any]:
        flow = self.flows.get((namespace, flow_id))
        if flow is None:
            raise HttpError(404, f"Flow '{namespace}.{flow_id}' not found")
        return flow

    # ------------------------------------------------------------------ starting executions
    def _new_execution(
        self,
        namespace: str,
        flow_id: str,
        inputs: dict[str, Any] | None,
        labels: dict[str, str],
        parent: str | None,
        trigger: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        flow = self._flow(namespace, flow_id)
        now = _now()
        ex_id = kestra_id()
        flow_labels = flow["doc"].get("labels") or {}
        all_labels = {**{str(k): str(v) for k, v in flow_labels.items()}, **labels}
        execution: dict[str, Any] = {
            "id": ex_id,
            "namespace": namespace,
            "flowId": flow_id,
            "flowRevision": flow["revision"],
            "tenantId": "main",
            "deleted": False,
            "outputs": {},
            "labels": [{"key": k, "value": v} for k, v in all_labels.items()],
            "state": _state("CREATED"),
            "taskRunList": [],
            "originalId": ex_id,
            "metadata": {"attemptNumber": 1, "originalCreatedDate": now},
        }
        if inputs is not None:
            execution["inputs"] = inputs
        if trigger is not None:
            execution["trigger"] = trigger
        if parent:
            execution["parentId"] = parent
        with self.lock:
            self.executions[ex_id] = execution
            self.logs[ex_id] = []
        return execution

    def trigger(
        self, namespace: str, flow_id: str, given: dict[str, str], labels: dict[str, str]
    ) -> dict[str, Any]:
        """``POST /executions/{namespace}/{flowId}``: the multipart inputs resolved like Kestra."""
        flow = self._flow(namespace, flow_id)
        try:
            inputs = rules.resolve_inputs(flow["doc"].get("inputs") or [], given)
        except rules.InputError as exc:
            raise HttpError(422, f"Invalid entity: {exc}") from None
        execution = self._new_execution(namespace, flow_id, inputs, labels, None)
        self._start(execution)
        return execution

    def webhook(
        self, namespace: str, flow_id: str, key: str, body: bytes, params: list[tuple[str, str]], headers: Any
    ) -> dict[str, Any]:
        """``/executions/webhook/{namespace}/{flowId}/{key}`` (1.x ``ExecutionController.webhook``):
        404 unless a Webhook trigger's rendered key matches; the body becomes ``trigger.body``; the
        execution has the trigger's ``inputs`` only (none when it declares none)."""
        flow = self._flow(namespace, flow_id)
        doc = flow["doc"]
        functions = self._functions()
        trigger = None
        for candidate in doc.get("triggers") or []:
            if candidate.get("type") != flow_lint.WEBHOOK:
                continue
            try:
                expected = render(str(candidate.get("key")), {}, functions).strip()
            except PebbleError:
                continue  # Kestra filters a webhook whose key cannot render
            if secrets.compare_digest(expected, key):
                trigger = candidate
                break
        if trigger is None:
            raise HttpError(404, "Not Found: Webhook not found")
        text = body.decode("utf-8", "replace") if body else None
        try:
            payload: Any = json.loads(text) if text else None
            if not isinstance(payload, dict | list):
                payload = text
        except ValueError:
            payload = text
        trigger_vars = {  # Webhook.Output, serialized NON_NULL: no body, no `body` key
            "body": payload,
            "headers": {k: [v] for k, v in headers.items()},
            "parameters": {k: [v] for k, v in params},
        }
        variables = {"trigger": without_nulls(trigger_vars)}
        variables["flow"] = {"id": flow_id, "namespace": namespace, "revision": flow["revision"]}
        try:
            inputs = rules.webhook_inputs(
                trigger, doc.get("inputs") or [], lambda v: render_value(v, variables, functions)
            )
        except (PebbleError, rules.InputError) as exc:
            # 1.x: "Unable to render the webhook inputs. Webhook will be ignored" -> 404; 2.x: 422
            raise HttpError(422 if self.major >= 2 else 404, f"No execution triggered: {exc}") from None
        execution = self._new_execution(
            namespace,
            flow_id,
            inputs,
            {},
            None,
            trigger={"id": trigger["id"], "type": trigger["type"], "variables": variables["trigger"]},
        )
        self._start(execution)
        return execution

    def _start(self, execution: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(execution["id"],), daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------ running flows
    def _secret(self, name: Any) -> str:
        value = self.secrets.get(str(name))
        if value is None:
            raise PebbleError(f"Cannot find secret for key '{name}'")
        return value

    def _functions(self) -> dict[str, Callable[..., Any]]:
        return {"secret": self._secret}

    def _variables(self, ex: dict[str, Any]) -> dict[str, Any]:
        """What Kestra's ``RunVariables`` gives a task of ``ex``: ``inputs`` only when the execution
        has some, ``trigger`` only when a trigger started it, ``outputs`` of the task runs that
        have outputs (``Execution.outputs()``: a task that ran several times, in a loop, reads as
        its runs merged, :func:`console.engines.kestra.rules.merge_outputs`)."""
        with self.lock:
            outputs: dict[str, Any] = {}
            for run in ex["taskRunList"]:  # Execution.outputs(): every run with outputs, merged in order
                if run.get("outputs") is not None:
                    outputs = rules.merge_outputs(outputs, {run["taskId"]: run["outputs"]})
            variables: dict[str, Any] = {
                "flow": {"id": ex["flowId"], "namespace": ex["namespace"], "revision": ex["flowRevision"]},
                "execution": {"id": ex["id"], "startDate": ex["state"]["startDate"], "originalId": ex["id"]},
                "labels": {label["key"]: label["value"] for label in ex["labels"]},
                "outputs": json.loads(json.dumps(outputs)),
            }
            if ex.get("inputs"):
                variables["inputs"] = json.loads(json.dumps(ex["inputs"]))
            if ex.get("trigger"):
                variables["trigger"] = json.loads(json.dumps(ex["trigger"]["variables"]))
        return variables

    def _render(self, run: dict[str, Any], value: Any, variables: Mapping[str, Any]) -> Any:
        """A task property rendered as Kestra renders it; a failure fails the task."""
        try:
            return render_value(value, variables, self._functions())
        except PebbleError as exc:
            raise _TaskFailed(str(exc)) from None

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
        self, execution: dict[str, Any], task_id: str, parent_run: str | None, iteration: int | None = None
    ) -> dict[str, Any]:
        run = {
            "id": kestra_id(),
            "executionId": execution["id"],
            "namespace": execution["namespace"],
            "flowId": execution["flowId"],
            "taskId": task_id,
            "state": _state("CREATED"),
            "outputs": None,
            "attempts": [],
        }
        if parent_run:
            run["parentTaskRunId"] = parent_run
        if iteration is not None:  # TaskRun.iteration: the children of a LoopUntil, per round
            run["iteration"] = iteration
        with self.lock:
            execution["taskRunList"].append(run)
            _move(run["state"], "RUNNING")
        return run

    def _alive(self, execution: dict[str, Any]) -> bool:
        return execution["state"]["current"] not in TERMINAL and execution["state"]["current"] != "KILLING"

    def _check(self, execution: dict[str, Any]) -> None:
        with self.lock:
            if execution["id"] not in self.executions:
                raise _Stopped
            if execution["state"]["current"] == "KILLING":
                raise self._killed(execution)
            if not self._alive(execution):
                raise _Stopped

    def _killed(self, ex: dict[str, Any]) -> _Stopped:
        _move(ex["state"], "KILLED")
        for run in ex["taskRunList"]:
            if run["state"]["current"] not in TERMINAL:
                _move(run["state"], "KILLED")
        return _Stopped()

    def _run(self, execution_id: str) -> None:
        with self.lock:
            execution = self.executions.get(execution_id)
        if execution is not None:
            self._execute(execution)

    def _execute(self, ex: dict[str, Any]) -> None:
        """Run a flow's tasks in order, then its outputs; the execution ends SUCCESS, FAILED
        (a task failed), KILLED or CANCELLED."""
        doc = self._flow(ex["namespace"], ex["flowId"])["doc"]
        with self.lock:
            _move(ex["state"], "RUNNING")
        try:
            self._run_tasks(ex, doc["tasks"], None)
            outputs = self._flow_outputs(ex, doc)
        except _Stopped:
            return
        except Exception as exc:  # a failed task, or a bug of the fake: the execution FAILS, visibly
            reason = str(exc) if isinstance(exc, _TaskFailed) else f"fake error: {type(exc).__name__}: {exc}"
            self._log(ex, "ERROR", reason, None)
            with self.lock:
                if self._alive(ex):
                    _move(ex["state"], "FAILED")
            return
        with self.lock:
            ex["outputs"] = outputs
            if self._alive(ex):
                _move(ex["state"], "SUCCESS")

    def _flow_outputs(self, ex: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        """The flow's ``outputs`` rendered, typed and written as ``FlowInputOutput.typedOutputs`` does
        (null values dropped)."""
        declared = doc.get("outputs") or []
        variables = self._variables(ex)
        try:
            rendered = {o["id"]: render_value(o.get("value"), variables, self._functions()) for o in declared}
            return rules.typed_outputs(declared, rendered)
        except (PebbleError, rules.InputError) as exc:
            raise _TaskFailed(f"Failed to render output values: {exc}") from None

    def _run_tasks(
        self,
        ex: dict[str, Any],
        tasks: list[dict[str, Any]],
        parent_run: str | None,
        iteration: int | None = None,
    ) -> None:
        for task in tasks:
            self._check(ex)
            run = self._task_run(ex, task["id"], parent_run, iteration)
            try:
                outputs = self._run_task(ex, task, run)
            except _TaskFailed as exc:
                with self.lock:
                    if run["state"]["current"] not in TERMINAL:
                        _move(run["state"], "FAILED")
                self._log(ex, "ERROR", f"{task['id']}: {exc}", run)
                raise
            with self.lock:
                run["outputs"] = outputs
                if run["state"]["current"] not in TERMINAL:
                    _move(run["state"], "SUCCESS")
        self._check(ex)

    def _run_task(self, ex: dict[str, Any], task: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        kind = task["type"]
        if kind == flow_lint.COMMANDS:
            return self._commands(ex, task, run)
        if kind == flow_lint.SUBFLOW:
            return self._subflow(ex, task, run)
        if kind == flow_lint.IF:
            condition = self._render(run, task["condition"], self._variables(ex))
            branch = task.get("then") if rules.truthy(condition) else task.get("else")
            self._run_tasks(ex, branch or [], run["id"])
            return {}
        if kind == flow_lint.SWITCH:
            value = self._render(run, task["value"], self._variables(ex))
            cases = task.get("cases") or {}
            self._run_tasks(ex, cases.get(value) or task.get("defaults") or [], run["id"])
            return {"value": value, "defaults": value not in cases}
        if kind == flow_lint.LOG:
            message = self._render(run, task["message"], self._variables(ex))
            self._log(ex, task.get("level", "INFO"), message, run)
            return {}
        if kind == flow_lint.PAUSE:
            return self._pause(ex, task, run)
        if kind == flow_lint.LOOP_UNTIL:
            return self._loop_until(ex, task, run)
        raise _TaskFailed(f"the fake cannot run task type {kind}")

    def _loop_until(self, ex: dict[str, Any], task: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        """``io.kestra.plugin.core.flow.LoopUntil`` (1.3; alias ``WaitFor``): the children run, in
        order, round after round (their runs carry ``iteration``); after each round ``condition`` is
        rendered and a truthy one (:func:`rules.truthy`) ends the loop; else the next round starts
        ``checkFrequency.interval`` later (1.3's default PT1M), unless ``maxIterations`` or
        ``maxDuration`` is reached: then the loop ends, FAILED with ``failOnMaxReached``."""
        frequency = task.get("checkFrequency") or {}
        variables = self._variables(ex)
        interval = _iso_seconds(self._render(run, frequency.get("interval") or "PT1M", variables))
        max_iterations = frequency.get("maxIterations")
        max_duration = frequency.get("maxDuration")
        limit_s = _iso_seconds(self._render(run, max_duration, variables)) if max_duration else None
        started = time.monotonic()
        count = 0
        while True:
            count += 1
            with self.lock:
                run["outputs"] = {"iterationCount": count}
            self._run_tasks(ex, task.get("tasks") or [], run["id"], count)
            if rules.truthy(self._render(run, task["condition"], self._variables(ex))):
                return {"iterationCount": count}
            reached = (max_iterations is not None and count >= int(max_iterations)) or (
                limit_s is not None and time.monotonic() - started >= limit_s
            )
            if reached:
                if task.get("failOnMaxReached") is True:
                    raise _TaskFailed("Max iterations or duration reached")
                return {"iterationCount": count}
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:  # the executor's delay, not a worker's
                self._check(ex)
                time.sleep(min(left, 0.05))

    def _commands(self, ex: dict[str, Any], task: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        """``python -m console step NAME FILE --kestra`` on the rendered ``inputFiles``; the step's
        ``Kestra.outputs`` become ``vars`` (nulls kept: ``TaskRun.outputs`` is ``@JsonInclude(ALWAYS)``)."""
        from console.loop.step_io import StepError
        from console.loop.steps import run_step

        working_dir = f"/tmp/kestra-wd/tmp/{run['id']}"
        variables = {**self._variables(ex), "workingDir": working_dir}
        self._render(run, task.get("env") or {}, variables)  # a missing secret fails the task here
        files = self._render(run, task.get("inputFiles") or {}, variables)
        commands = self._render(run, task.get("commands") or [], variables)
        run["attempts"] = [{"state": _state("RUNNING")}]
        values: dict[str, Any] = {}
        for command in commands:
            self._log(ex, "INFO", command.replace(working_dir + "/", ""), run)
            m = _STEP.match(command)
            name = m.group(2).removeprefix(working_dir + "/") if m else ""
            if not m or name not in files:
                raise _TaskFailed(f"Command failed with exit code 127: {command}")
            try:
                data = json.loads(files[name])
            except ValueError as exc:
                raise _TaskFailed(f"Command failed with exit code 2: {name}: not JSON: {exc}") from None
            if not isinstance(data, dict):
                raise _TaskFailed("Command failed with exit code 2: error: step input must be a JSON object")
            try:
                # the CLI's JSON round trip: the step sees what a container would
                values = json.loads(json.dumps(run_step(m.group(1), data, self.settings)))
            except StepError as exc:
                raise _TaskFailed(f"Command failed with exit code 2: error: {exc}") from None
            except Exception as exc:
                raise _TaskFailed(f"Command failed with exit code 1: {type(exc).__name__}: {exc}") from None
            self._log(ex, "INFO", f"step {m.group(1)} done", run)
        with self.lock:
            _move(run["attempts"][0]["state"], "SUCCESS")
        return {"vars": values, "exitCode": 0}

    def _subflow(self, ex: dict[str, Any], task: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        """A Subflow task (wait: true, transmitFailed: true): its ``inputs`` rendered (each value a
        string), the child's inputs resolved from them, the child run to its end; its flow outputs
        are the task's ``outputs``."""
        rendered = self._render(run, task.get("inputs") or {}, self._variables(ex))
        try:
            child_flow = self._flow(task["namespace"], task["flowId"])
            inputs = rules.resolve_inputs(child_flow["doc"].get("inputs") or [], rendered)
        except (HttpError, rules.InputError) as exc:
            raise _TaskFailed(str(exc.message if isinstance(exc, HttpError) else exc)) from None
        child = self._new_execution(task["namespace"], task["flowId"], inputs, {}, ex["id"])
        with self.lock:
            run["outputs"] = {"executionId": child["id"]}
        self._execute(child)
        with self.lock:
            state = child["state"]["current"]
            if state in ("KILLING", "KILLED") or ex["state"]["current"] == "KILLING":
                raise self._killed(ex)
            if state != "SUCCESS":
                raise _TaskFailed(f"subflow {task['flowId']} ended {state} ({child['id']})")
            return {"executionId": child["id"], "state": state, "outputs": child["outputs"]}

    def _pause(self, ex: dict[str, Any], task: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        event = threading.Event()
        with self.lock:
            _move(run["state"], "PAUSED")
            _move(ex["state"], "PAUSED")
            self._resume_events[ex["id"]] = event
            self._paused[ex["id"]] = {"task": task, "run": run}
        self._log(ex, "INFO", f"Execution paused, waiting for resume ({task['id']})", run)
        # pauseDuration is a Property<Duration>: rendered; the tests' override is for approvals only
        given = task.get("pauseDuration")
        limit = _iso_seconds(self._render(run, given, self._variables(ex))) if given else None
        if task.get("onResume") and self.pause_seconds is not None:
            limit = self.pause_seconds
        resumed = event.wait(limit)
        with self.lock:
            self._resume_events.pop(ex["id"], None)
            self._paused.pop(ex["id"], None)
            if ex["id"] not in self.executions:  # deleted while it waited
                raise _Stopped
            if ex["state"]["current"] == "KILLING":
                raise self._killed(ex)
            if resumed:
                return run["outputs"]
            final = {"CANCEL": "CANCELLED", "FAIL": "FAILED"}.get(task.get("behavior", "RESUME"))
            if final is None:  # Kestra's default RESUME: what the flows must never rely on
                _move(ex["state"], "RUNNING")
                return {"onResume": {}, "resumed": None}
            _move(run["state"], final)
            for other in ex["taskRunList"]:
                if other["state"]["current"] not in TERMINAL:
                    _move(other["state"], final)
            _move(ex["state"], final)
        self._log(ex, "WARN", f"Pause duration expired: execution {final}", run)
        raise _Stopped

    # ------------------------------------------------------------------ control
    def resume(self, execution_id: str, given: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            ex = self.executions.get(execution_id)
            if ex is None:
                raise HttpError(404, f"Execution '{execution_id}' not found")
            paused = self._paused.get(execution_id)
            if ex["state"]["current"] != "PAUSED" or paused is None:
                raise HttpError(
                    409, f"Execution '{execution_id}' is not paused (state {ex['state']['current']})"
                )
            try:
                values = rules.resolve_inputs(paused["task"].get("onResume") or [], given)
            except rules.InputError as exc:
                raise HttpError(422, f"Invalid entity: {exc}") from None
            run = paused["run"]
            run["outputs"] = {
                "onResume": values,
                "resumed": {"by": self.username, "on": _now(), "to": "RUNNING"},
            }
            _move(run["state"], "RUNNING")
            _move(ex["state"], "RUNNING")
            event = self._resume_events.get(execution_id)
        if event:
            event.set()
        return ex

    def kill(self, execution_id: str, cascade: bool = True) -> dict[str, Any]:
        """``ExecutionController.killExecution``: 404 unknown; a finished execution is refused (409)
        only without cascade, else accepted and left as it is; a running or paused one is killed
        with its running subflow executions."""
        with self.lock:
            ex = self.executions.get(execution_id)
            if ex is None:
                raise HttpError(404, f"Execution '{execution_id}' not found")
            state = ex["state"]["current"]
            if rules.kill_refused(state, TERMINAL, cascade):
                raise HttpError(409, "Illegal state: Execution is already finished, can't kill it")
            if state in TERMINAL:
                return ex  # the kill event finds nothing to kill
            targets = [ex]
            if cascade:
                targets += [e for e in self.executions.values() if e.get("parentId") == execution_id]
            for target in targets:
                if target["state"]["current"] not in TERMINAL and target["state"]["current"] != "KILLING":
                    _move(target["state"], "KILLING")
                    event = self._resume_events.get(target["id"])
                    if event:
                        event.set()
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
        self, status: int, body: Any = None, *, raw: bytes | None = None, ctype: str = rules.JSON_MEDIA_TYPE
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
            open_url = rules.is_open_url(path, fake.open_urls)  # AuthenticationFilter skips these
            if fault == "401" or not (open_url or self._authorized()):
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
            # the route produces text/json only: Micronaut matches Accept exactly (406 otherwise)
            self._produces(rules.KILL_MEDIA_TYPE)
            cascade = dict(params).get("isOnKillCascade", "true").lower() != "false"
            ex = fake.kill(seg[1], cascade)
            if v2:
                return self._send(200, fake.view(ex), ctype=rules.KILL_MEDIA_TYPE)
            return self._send(202, ctype=rules.KILL_MEDIA_TYPE)
        self._produces(rules.JSON_MEDIA_TYPE)
        if len(seg) == 5 and seg[:2] == ["executions", "webhook"] and method in {"POST", "PUT", "GET"}:
            ex = fake.webhook(seg[2], seg[3], seg[4], body, params, self.headers)
            return self._send(200, self._webhook_response(ex))
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

    def _produces(self, media_type: str) -> None:
        accept = self.headers.get("Accept")
        if not rules.accepts(accept, media_type):
            refused = f"Specified Accept Types [{accept}] not supported. Supported types: [{media_type}]"
            raise HttpError(406, f"Not Acceptable: {refused}")

    def _webhook_response(self, ex: dict[str, Any]) -> dict[str, Any]:
        """1.x ``ExecutionController.WebhookResponse``: not the whole execution."""
        fake = self.server_fake
        view = fake.view(ex)
        keys = "tenantId id namespace flowId flowRevision trigger outputs labels state".split()
        url = f"{fake.url}/ui/main/executions/{ex['namespace']}/{ex['flowId']}/{ex['id']}"
        return {**{k: view.get(k) for k in keys}, "url": url}

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
