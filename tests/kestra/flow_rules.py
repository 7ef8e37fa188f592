"""A small static checker for the flows in flows/, standing in for Kestra's own validator.

Kestra publishes no JSON schema of flows beside the project, so the rules below come from Kestra's
plugin documentation (required/allowed properties of each task type we use, id patterns, input
types) plus the project's own rules (Pause must reject on expiry, steps called through the CLI).
``check_flows`` returns a list of one-line problems; empty means valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from console.domain.vocabulary import STEP_TASKS

# Kestra's id patterns (io.kestra.core.models.flows.Flow / Task / Input annotations)
FLOW_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TASK_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
INPUT_ID = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")
MAX_ID = 100

INPUT_TYPES = {
    "STRING",
    "SELECT",
    "MULTISELECT",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "FILE",
    "JSON",
    "URI",
    "SECRET",
    "ARRAY",
    "YAML",
    "EMAIL",
    "ENUM",
}
INPUT_KEYS = {
    "id",
    "type",
    "description",
    "required",
    "defaults",
    "values",
    "allowCustomValue",
    "displayName",
    "dependsOn",
    "itemType",
    "validator",
    "min",
    "max",
    "prefill",
    "expression",
    "autoSelectFirst",
    "isRadio",
    "allowedFileExtensions",
}
OUTPUT_KEYS = {"id", "type", "value", "description", "required", "displayName"}
FLOW_KEYS = {
    "id",
    "namespace",
    "description",
    "labels",
    "inputs",
    "outputs",
    "tasks",
    "triggers",
    "errors",
    "finally",
    "afterExecution",
    "pluginDefaults",
    "variables",
    "concurrency",
    "disabled",
    "retry",
    "sla",
    "checks",
    "workerGroup",
    "revision",
}
COMMON_TASK_KEYS = {
    "id",
    "type",
    "description",
    "timeout",
    "retry",
    "disabled",
    "allowFailure",
    "allowWarning",
    "logLevel",
    "logToFile",
    "runIf",
    "workerGroup",
}

COMMANDS = "io.kestra.plugin.scripts.python.Commands"
SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
PAUSE = "io.kestra.plugin.core.flow.Pause"
IF = "io.kestra.plugin.core.flow.If"
SWITCH = "io.kestra.plugin.core.flow.Switch"
LOG = "io.kestra.plugin.core.log.Log"
WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"


@dataclass(frozen=True)
class TaskType:
    required: frozenset[str]
    allowed: frozenset[str]
    output_attrs: frozenset[str]  # what `{{ outputs.<id>.X }}` may read
    children: tuple[str, ...] = ()  # properties holding nested task lists


def _t(required: set[str], extra: set[str], outputs: set[str], children: tuple[str, ...] = ()) -> TaskType:
    return TaskType(
        frozenset(required), frozenset(required | extra | COMMON_TASK_KEYS), frozenset(outputs), children
    )


TASK_TYPES: dict[str, TaskType] = {
    COMMANDS: _t(
        {"id", "type", "commands"},
        {
            "containerImage",
            "taskRunner",
            "env",
            "inputFiles",
            "outputFiles",
            "namespaceFiles",
            "beforeCommands",
            "interpreter",
            "warningOnStdErr",
            "failFast",
            "targetOS",
            "docker",
            "dependencies",
            "dependencyCacheEnabled",
            "pythonVersion",
        },
        {"vars", "exitCode", "outputFiles", "taskRunner"},
    ),
    SUBFLOW: _t(
        {"id", "type", "namespace", "flowId"},
        {
            "inputs",
            "wait",
            "transmitFailed",
            "labels",
            "inheritLabels",
            "revision",
            "scheduleDate",
            "outputs",
            "restartBehavior",
        },
        {"outputs", "executionId", "state"},
    ),
    PAUSE: _t(
        {"id", "type"}, {"pauseDuration", "behavior", "onResume", "onPause", "delay"}, {"onResume", "resumed"}
    ),
    IF: _t(
        {"id", "type", "condition", "then"},
        {"else", "errors", "finally"},
        set(),
        ("then", "else", "errors", "finally"),
    ),
    SWITCH: _t(
        {"id", "type", "value", "cases"},
        {"defaults", "errors", "finally"},
        {"value", "defaults"},
        ("defaults", "errors", "finally"),
    ),
    LOG: _t({"id", "type", "message"}, {"level"}, set()),
}
TRIGGER_TYPES: dict[str, TaskType] = {
    WEBHOOK: TaskType(
        frozenset({"id", "type", "key"}),
        frozenset(
            {
                "id",
                "type",
                "key",
                "description",
                "conditions",
                "disabled",
                "stopAfter",
                "inputs",
                "wait",
                "returnOutputs",
                "logLevel",
                "labels",
            }
        ),
        frozenset(),
    ),
}
RUNNER_KEYS = {
    DOCKER_RUNNER: {
        "type",
        "pullPolicy",
        "config",
        "credentials",
        "cpu",
        "memory",
        "volumes",
        "host",
        "user",
        "entryPoint",
        "extraHosts",
        "networkMode",
        "privileged",
        "shmSize",
        "deviceRequests",
        "wait",
        "delete",
        "fileHandlingStrategy",
        "resume",
        "killGracePeriod",
    },
    PROCESS_RUNNER: {"type"},
}
PULL_POLICIES = {"IF_NOT_PRESENT", "ALWAYS", "NEVER"}
PAUSE_BEHAVIORS_REJECTING = {"CANCEL", "FAIL"}
PAUSE_BEHAVIORS = {"RESUME", "WARN", "CANCEL", "FAIL"}
LOG_LEVELS = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"}
PROJECT_IMAGE = "devops-loop-console:latest"
STEPS = set(STEP_TASKS)
STEP_COMMAND = re.compile(r"^python -m console step (\w+) (?:\{\{ ?workingDir ?\}\}/)?([\w.-]+) --kestra$")
ISO_DURATION = re.compile(r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$")
EXPRESSION = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
OUTPUT_REF = re.compile(r"\boutputs\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?(?:\.([A-Za-z0-9_]+))?")


@dataclass
class FlowDoc:
    file: str
    doc: dict[str, Any]
    tasks: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # (task, order)


def load_flows(flows_dir: Path) -> dict[str, FlowDoc]:
    """Parse every flow file; keyed by file name."""
    out = {}
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        out[path.name] = FlowDoc(path.name, yaml.safe_load(path.read_text(encoding="utf-8")))
    return out


def check_flows(flows_dir: Path) -> list[str]:
    try:
        flows = load_flows(flows_dir)
    except yaml.YAMLError as exc:
        return [f"YAML does not parse: {str(exc).splitlines()[0]}"]
    if not flows:
        return [f"no flows in {flows_dir}"]
    return check_documents({name: flow.doc for name, flow in flows.items()})


def check_documents(docs: dict[str, Any], known: dict[str, Any] | None = None) -> list[str]:
    """Check parsed flow documents (keyed by file name). ``known`` adds flows that may be called
    as subflows without being checked themselves (e.g. those already deployed on a server)."""
    flows = {name: FlowDoc(name, doc) for name, doc in docs.items()}
    problems: list[str] = []
    by_ref: dict[tuple[str, str], FlowDoc] = {}
    for name, doc in (known or {}).items():
        if isinstance(doc, dict):
            by_ref[(doc.get("namespace"), doc.get("id"))] = FlowDoc(name, doc)
    seen: set[tuple[str, str]] = set()
    for flow in flows.values():
        doc = flow.doc
        if isinstance(doc, dict) and isinstance(doc.get("namespace"), str) and isinstance(doc.get("id"), str):
            key = (doc["namespace"], doc["id"])
            if key in seen:
                problems.append(f"{flow.file}: flow {key[0]}.{key[1]} is defined twice")
            seen.add(key)
            by_ref[key] = flow
    for flow in flows.values():
        problems += [f"{flow.file}: {p}" for p in _check_flow(flow, by_ref)]
    return problems


def _check_flow(flow: FlowDoc, by_ref: dict[tuple[str, str], FlowDoc]) -> list[str]:
    doc = flow.doc
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems: list[str] = []
    for key in ("id", "namespace", "tasks"):
        if key not in doc:
            problems.append(f"missing '{key}'")
    problems += [f"unknown flow property '{k}'" for k in doc if k not in FLOW_KEYS]
    fid, ns = doc.get("id"), doc.get("namespace")
    if not isinstance(fid, str) or not FLOW_ID.match(fid) or len(fid) > MAX_ID:
        problems.append(f"flow id {fid!r} does not match {FLOW_ID.pattern}")
    if not isinstance(ns, str) or not NAMESPACE.match(ns) or len(ns) > 150:
        problems.append(f"namespace {ns!r} does not match {NAMESPACE.pattern}")
    if isinstance(fid, str) and Path(flow.file).stem != fid:
        problems.append(f"file name should be {fid}.yaml")
    problems += _check_inputs(doc.get("inputs") or [], "inputs")

    # tasks, in execution (document) order
    ordered: list[dict[str, Any]] = []
    tasks = doc.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        problems.append("'tasks' must be a non-empty list")
    else:
        problems += _walk(tasks, ordered, "tasks")
    ids = [t.get("id") for t in ordered]
    seen: set[str] = set()
    for tid in ids:
        if tid in seen:
            problems.append(f"task id {tid!r} is not unique")
        seen.add(tid)
    task_by_id = {t.get("id"): t for t in ordered}
    position = {t.get("id"): i for i, t in enumerate(ordered)}

    for i, task in enumerate(ordered):
        problems += _check_task(task, by_ref)
        for ref_id, attr, key in _refs(_strip_children(task)):
            problems += _check_ref(ref_id, attr, key, task_by_id, by_ref, f"task {task.get('id')}")
            if ref_id in position and position[ref_id] >= i and not _contains(task, ref_id):
                problems.append(f"task {task.get('id')} reads outputs.{ref_id} before it runs")

    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list):
        problems.append("'outputs' must be a list")
    else:
        for j, out in enumerate(outputs):
            where = f"outputs[{j}]"
            if not isinstance(out, dict):
                problems.append(f"{where} is not a mapping")
                continue
            problems += [f"{where}: unknown property '{k}'" for k in out if k not in OUTPUT_KEYS]
            if not isinstance(out.get("id"), str) or not INPUT_ID.match(out["id"]):
                problems.append(f"{where}: id {out.get('id')!r} is not valid")
            if out.get("type") not in INPUT_TYPES:
                problems.append(f"{where}: type {out.get('type')!r} is not a Kestra type")
            if "value" not in out:
                problems.append(f"{where}: missing 'value'")
            for ref_id, attr, key in _refs(out.get("value")):
                problems += _check_ref(ref_id, attr, key, task_by_id, by_ref, where)

    triggers = doc.get("triggers") or []
    for j, trig in enumerate(triggers if isinstance(triggers, list) else []):
        where = f"triggers[{j}]"
        spec = TRIGGER_TYPES.get(trig.get("type")) if isinstance(trig, dict) else None
        if spec is None:
            problems.append(
                f"{where}: trigger type {trig.get('type') if isinstance(trig, dict) else trig!r} "
                "is not in the table"
            )
            continue
        problems += _props(trig, spec, where)
    return problems


def _check_inputs(inputs: Any, where: str) -> list[str]:
    if not isinstance(inputs, list):
        return [f"'{where}' must be a list"]
    problems, seen = [], set()
    for j, inp in enumerate(inputs):
        at = f"{where}[{j}]"
        if not isinstance(inp, dict):
            problems.append(f"{at} is not a mapping")
            continue
        iid = inp.get("id")
        if not isinstance(iid, str) or not INPUT_ID.match(iid):
            problems.append(f"{at}: id {iid!r} is not valid")
        if iid in seen:
            problems.append(f"{at}: id {iid!r} is not unique")
        seen.add(iid)
        if inp.get("type") not in INPUT_TYPES:
            problems.append(f"{at}: type {inp.get('type')!r} is not a Kestra input type")
        if inp.get("type") in {"SELECT", "MULTISELECT"} and not inp.get("values"):
            problems.append(f"{at}: {inp.get('type')} needs 'values'")
        problems += [f"{at}: unknown property '{k}'" for k in inp if k not in INPUT_KEYS]
        if "required" in inp and not isinstance(inp["required"], bool):
            problems.append(f"{at}: 'required' must be a boolean")
    return problems


def _walk(tasks: Any, ordered: list[dict[str, Any]], where: str) -> list[str]:
    if not isinstance(tasks, list):
        return [f"{where} must be a list of tasks"]
    problems = []
    for j, task in enumerate(tasks):
        if not isinstance(task, dict):
            problems.append(f"{where}[{j}] is not a mapping")
            continue
        ordered.append(task)
        spec = TASK_TYPES.get(task.get("type"))
        for child in spec.children if spec else ():
            if child in task:
                problems += _walk(task[child], ordered, f"{task.get('id')}.{child}")
        if task.get("type") == SWITCH and isinstance(task.get("cases"), dict):
            for case, sub in task["cases"].items():
                problems += _walk(sub, ordered, f"{task.get('id')}.cases.{case}")
    return problems


def _props(obj: dict[str, Any], spec: TaskType, where: str) -> list[str]:
    problems = [f"{where}: missing required property '{k}'" for k in sorted(spec.required) if k not in obj]
    problems += [f"{where}: unknown property '{k}'" for k in obj if k not in spec.allowed]
    return problems


def _check_task(task: dict[str, Any], by_ref: dict[tuple[str, str], FlowDoc]) -> list[str]:
    tid = task.get("id")
    where = f"task {tid}"
    problems: list[str] = []
    if not isinstance(tid, str) or not TASK_ID.match(tid) or len(tid) > MAX_ID:
        problems.append(f"{where}: id does not match {TASK_ID.pattern}")
    ttype = task.get("type")
    spec = TASK_TYPES.get(ttype)
    if spec is None:
        return [*problems, f"{where}: task type {ttype!r} is not in the table of known types"]
    problems += _props(task, spec, where)

    if ttype == COMMANDS:
        if task.get("containerImage") != PROJECT_IMAGE:
            problems.append(f"{where}: containerImage must be the project image {PROJECT_IMAGE}")
        runner = task.get("taskRunner")
        if runner is not None:
            rtype = runner.get("type") if isinstance(runner, dict) else None
            if rtype not in RUNNER_KEYS:
                problems.append(f"{where}: taskRunner type {rtype!r} is not known")
            else:
                problems += [
                    f"{where}: taskRunner: unknown property '{k}'"
                    for k in runner
                    if k not in RUNNER_KEYS[rtype]
                ]
                if "pullPolicy" in runner and runner["pullPolicy"] not in PULL_POLICIES:
                    problems.append(f"{where}: pullPolicy {runner['pullPolicy']!r} is not valid")
        commands = task.get("commands")
        if not isinstance(commands, list) or not commands:
            problems.append(f"{where}: 'commands' must be a non-empty list")
        else:
            for cmd in commands:
                m = STEP_COMMAND.match(str(cmd))
                if not m or m.group(1) not in STEPS:
                    problems.append(
                        f"{where}: command {cmd!r} is not `python -m console step NAME FILE --kestra`"
                    )
                elif m.group(2) not in (task.get("inputFiles") or {}):
                    problems.append(
                        f"{where}: the step reads {m.group(2)} but inputFiles does not provide it"
                    )
        for name in ("env", "inputFiles"):
            if name in task and not isinstance(task[name], dict):
                problems.append(f"{where}: '{name}' must be a mapping")
    elif ttype == SUBFLOW:
        target = by_ref.get((task.get("namespace"), task.get("flowId")))
        if target is None:
            problems.append(f"{where}: subflow {task.get('namespace')}.{task.get('flowId')} is not in flows/")
        else:
            declared = {i.get("id"): i for i in target.doc.get("inputs") or [] if isinstance(i, dict)}
            given = task.get("inputs") or {}
            problems += [
                f"{where}: input '{k}' is not declared by {task.get('flowId')}"
                for k in given
                if k not in declared
            ]
            problems += [
                f"{where}: required input '{k}' of {task.get('flowId')} is not passed"
                for k, i in declared.items()
                if i.get("required", True) and "defaults" not in i and k not in given
            ]
        if task.get("wait") is not True or task.get("transmitFailed") is not True:
            problems.append(f"{where}: subflows must set wait: true and transmitFailed: true")
    elif ttype == PAUSE:
        duration = task.get("pauseDuration")
        if not isinstance(duration, str) or not ISO_DURATION.match(duration) or duration in {"P", "PT"}:
            problems.append(f"{where}: Pause needs an ISO-8601 pauseDuration")
        if task.get("behavior") not in PAUSE_BEHAVIORS_REJECTING:
            problems.append(
                f"{where}: Pause behavior must be CANCEL or FAIL (got {task.get('behavior')!r}; "
                "Kestra's default RESUME approves what nobody approved)"
            )
        if "delay" in task:
            problems.append(f"{where}: 'delay' is the pre-0.22 property; use pauseDuration")
        problems += _check_inputs(task.get("onResume") or [], f"{where}.onResume")
        resume_ids = {i.get("id"): i.get("type") for i in task.get("onResume") or [] if isinstance(i, dict)}
        if tid == "approval" and resume_ids != {
            "approved": "BOOLEAN",
            "comment": "STRING",
            "approver": "STRING",
            "rollback_target": "JSON",
        }:
            problems.append(
                f"{where}: onResume must be approved BOOLEAN, comment STRING, approver STRING, "
                "rollback_target JSON"
            )
    elif ttype == SWITCH:
        if not isinstance(task.get("cases"), dict) or not task["cases"]:
            problems.append(f"{where}: 'cases' must be a non-empty mapping")
    elif ttype == LOG and task.get("level", "INFO") not in LOG_LEVELS:
        problems.append(f"{where}: level {task.get('level')!r} is not a log level")
    return problems


def _strip_children(task: dict[str, Any]) -> dict[str, Any]:
    spec = TASK_TYPES.get(task.get("type"))
    drop = set(spec.children if spec else ()) | ({"cases"} if task.get("type") == SWITCH else set())
    return {k: v for k, v in task.items() if k not in drop}


def _contains(task: dict[str, Any], task_id: str) -> bool:
    return task_id in {t.get("id") for t in _flatten(task)}


def _flatten(task: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    _walk([task], out, "")
    return out


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _refs(value: Any) -> list[tuple[str, str | None, str | None]]:
    found = []
    for text in _strings(value):
        for match in EXPRESSION.finditer(text):
            expr = match.group(1) or match.group(2) or ""
            found += [m.groups() for m in OUTPUT_REF.finditer(expr)]
    return found


def _check_ref(
    ref_id: str,
    attr: str | None,
    key: str | None,
    task_by_id: dict[Any, dict[str, Any]],
    by_ref: dict[tuple[str, str], FlowDoc],
    where: str,
) -> list[str]:
    task = task_by_id.get(ref_id)
    if task is None:
        return [f"{where}: outputs.{ref_id} refers to no task of this flow"]
    spec = TASK_TYPES.get(task.get("type"))
    if spec is None:
        return []
    if attr is not None and attr not in spec.output_attrs:
        kind = task["type"].rsplit(".", 1)[-1]
        return [f"{where}: outputs.{ref_id}.{attr} — a {kind} task has no '{attr}' output"]
    problems = []
    if task.get("type") == SUBFLOW and attr == "outputs" and key is not None:
        target = by_ref.get((task.get("namespace"), task.get("flowId")))
        declared = {o.get("id") for o in (target.doc.get("outputs") or [])} if target else set()
        if target and key not in declared:
            problems.append(
                f"{where}: outputs.{ref_id}.outputs.{key} is not an output of {task.get('flowId')}"
            )
    if task.get("type") == PAUSE and attr == "onResume" and key is not None:
        declared = {i.get("id") for i in task.get("onResume") or []}
        if key not in declared:
            problems.append(f"{where}: outputs.{ref_id}.onResume.{key} is not an onResume input")
    return problems
