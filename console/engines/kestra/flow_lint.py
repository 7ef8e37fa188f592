"""The flow linter: what Kestra 1.3 would refuse in ``flows/``, found offline.

``python -m console kestra lint flows/`` prints one line per violation (file, flow, path, rule,
message) and exits non-zero when there is one; ``scripts/test.sh`` runs it after ruff, and
``KestraBackend.sync_flows`` runs it before Kestra's own ``/flows/validate``. Rules come in three
kinds, named by their prefix:

- ``kestra/…``: Kestra refuses the flow when it is saved or validated (its model annotations,
  ``FlowValidator``, ``InputValidator``, the plugins' properties). The fake server applies these
  on deploy and validate, as Kestra does.
- ``runtime/…``: Kestra saves the flow, and its executions then fail: a Pebble expression that
  reads what is not there on some path (strict variables, :mod:`console.engines.kestra.pebble`),
  a webhook whose executions have no inputs, a subflow input the child refuses. The fake fails
  those executions the same way.
- ``project/…``: the project's own rules (the steps run through the CLI in the project image, an
  approval Pause that rejects when nobody decides, webhook keys from Kestra secrets…).

Kestra's rules are implemented once, in :mod:`console.engines.kestra.rules` and
:mod:`console.engines.kestra.pebble`; this module applies them to whole flows.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from console.domain.config_reader import load_yaml
from console.domain.text import one_line
from console.domain.vocabulary import STEP_TASKS
from console.engines.kestra import rules
from console.engines.kestra.pebble import PebbleSyntaxError, Read, compile_template, is_template


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


INPUT_KEYS = _words(
    "id type description required defaults prefill values allowCustomValue displayName dependsOn "
    "itemType validator min max expression autoSelectFirst isRadio allowedFileExtensions"
)
OUTPUT_KEYS = _words("id type value description required displayName")
FLOW_KEYS = _words(
    "id namespace description labels inputs outputs tasks triggers errors finally afterExecution "
    "pluginDefaults variables concurrency disabled retry sla checks workerGroup revision"
)
COMMON_TASK_KEYS = _words(
    "id type description timeout retry disabled allowFailure allowWarning logLevel logToFile runIf "
    "workerGroup"
)
NOT_RENDERED = _words("id type description")
"""Task and trigger properties Kestra never renders."""
EXECUTION_ROOTS = _words(
    "inputs outputs trigger execution flow labels vars envs globals taskrun task parent parents "
    "workingDir kestra"
)
"""The variables Kestra's ``RunVariables`` may give a task (``inputs`` and ``trigger`` only when the
execution has them)."""

COMMANDS = "io.kestra.plugin.scripts.python.Commands"
SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
PAUSE = "io.kestra.plugin.core.flow.Pause"
IF = "io.kestra.plugin.core.flow.If"
SWITCH = "io.kestra.plugin.core.flow.Switch"
LOG = "io.kestra.plugin.core.log.Log"
LOOP_UNTIL = "io.kestra.plugin.core.flow.LoopUntil"
"""1.3's loop (``WaitFor`` before, an alias): its children run round after round until ``condition``
is true; between rounds the executor waits ``checkFrequency.interval`` (no worker is held)."""
WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"


@dataclass(frozen=True)
class TaskType:
    """What the plugin documentation says of a task type: required and allowed properties, what
    ``{{ outputs.<id>.X }}`` may read, and which properties hold child tasks (and whether those
    run on some executions only)."""

    required: frozenset[str]
    allowed: frozenset[str]
    output_attrs: frozenset[str]
    children: tuple[str, ...] = ()
    conditional: bool = False


def _type(
    required: str, extra: str, outputs: str, children: tuple[str, ...] = (), conditional: bool = False
) -> TaskType:
    needed = _words(required)
    return TaskType(needed, needed | _words(extra) | COMMON_TASK_KEYS, _words(outputs), children, conditional)


TASK_TYPES: dict[str, TaskType] = {
    COMMANDS: _type(
        "id type commands",
        "containerImage taskRunner env inputFiles outputFiles namespaceFiles beforeCommands interpreter "
        "warningOnStdErr failFast targetOS docker dependencies dependencyCacheEnabled pythonVersion",
        "vars exitCode outputFiles taskRunner",
    ),
    SUBFLOW: _type(
        "id type namespace flowId",
        "inputs wait transmitFailed labels inheritLabels revision scheduleDate outputs restartBehavior",
        "outputs executionId state",
    ),
    PAUSE: _type("id type", "pauseDuration behavior onResume onPause delay", "onResume resumed"),
    IF: _type(
        "id type condition then", "else errors finally", "", ("then", "else", "errors", "finally"), True
    ),
    SWITCH: _type(
        "id type value cases",
        "defaults errors finally",
        "value defaults",
        ("defaults", "errors", "finally"),
        True,
    ),
    LOG: _type("id type message", "level", ""),
    LOOP_UNTIL: _type(
        "id type condition tasks",
        "checkFrequency failOnMaxReached errors finally",
        "iterationCount",
        ("tasks", "errors", "finally"),
    ),
}
TRIGGER_TYPES: dict[str, TaskType] = {
    WEBHOOK: TaskType(
        _words("id type key"),
        _words(
            "id type key description conditions disabled stopAfter inputs wait returnOutputs logLevel labels"
        ),
        frozenset(),
    ),
}
RUNNER_KEYS = {
    DOCKER_RUNNER: _words(
        "type pullPolicy config credentials cpu memory volumes host user entryPoint extraHosts networkMode "
        "privileged shmSize deviceRequests wait delete fileHandlingStrategy resume killGracePeriod"
    ),
    PROCESS_RUNNER: _words("type"),
}
PULL_POLICIES = frozenset({"IF_NOT_PRESENT", "ALWAYS", "NEVER"})
PAUSE_BEHAVIORS_REJECTING = frozenset({"CANCEL", "FAIL"})
CHECK_FREQUENCY_KEYS = _words("interval maxDuration maxIterations")
LOG_LEVELS = frozenset({"ERROR", "WARN", "INFO", "DEBUG", "TRACE"})
PROJECT_IMAGE = "devops-loop-console:latest"
STEP_COMMAND = re.compile(r"^python -m console step (\w+) (?:\{\{ ?workingDir ?\}\}/)?([\w.-]+) --kestra$")
ISO_DURATION = re.compile(r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$")
SECRET_KEY = re.compile(r"^\{\{\s*secret\('[A-Z0-9_]+'\)\s*\}\}$")
VIOLATION_LIMIT = 1000
"""A violation's parts are one line each, cut at this many characters (a template can be long)."""
APPROVAL_INPUTS = {"approved": "BOOL", "comment": "STRING", "approver": "STRING", "rollback_target": "JSON"}
"""The approval Pause's onResume inputs, as the console's resume sends them."""
OPTIONAL_APPROVAL_INPUTS = ("comment", "rollback_target")


@dataclass(frozen=True, order=True)
class Violation:
    file: str
    flow: str
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.flow}: {self.path}: {self.rule}: {self.message}"

    @property
    def refused_on_deploy(self) -> bool:
        """Kestra itself refuses the flow when it is saved (``kestra/`` rules)."""
        return self.rule.startswith("kestra/")


@dataclass
class _Task:
    doc: dict[str, Any]
    path: str  # e.g. tasks[approval_gate].then[approval]
    branch: tuple[str, ...]  # the conditional branches it sits in, outermost first
    loop: str | None = None  # the LoopUntil it runs in (the innermost), if any


@dataclass
class _Flow:
    file: str
    doc: Any
    problems: list[Violation] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.doc.get("id")) if isinstance(self.doc, dict) else "?"

    def add(self, path: str, rule: str, message: str) -> None:
        """One violation, on one line (a newline in an id from the flow becomes a space)."""
        violation = Violation(self.file, _line(self.name), _line(path), rule, _line(message))
        if violation not in self.problems:  # one template may read the same thing twice
            self.problems.append(violation)


def load_documents(path: Path) -> tuple[dict[str, Any], list[Violation]]:
    """Parsed flow files of a folder (or one file), keyed by their path, and the files that do not
    parse."""
    files = [path] if path.is_file() else sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    docs: dict[str, Any] = {}
    broken: list[Violation] = []
    for file in files:
        try:
            docs[str(file)] = load_yaml(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            broken.append(
                Violation(str(file), "?", "", "kestra/yaml", f"YAML does not parse: {_first_line(exc)}")
            )
        except (OSError, UnicodeDecodeError) as exc:
            broken.append(Violation(str(file), "?", "", "kestra/yaml", f"cannot be read: {exc}"))
    return docs, broken


def lint_path(path: Path) -> list[Violation]:
    """Every violation of the flows in a folder (or one file); [] when there is nothing to say."""
    if not path.exists():
        return [Violation(str(path), "?", "", "project/flows", "no such file or folder")]
    docs, broken = load_documents(path)
    if not docs and not broken:
        return [Violation(str(path), "?", "", "project/flows", "no flow files (*.yaml, *.yml)")]
    return sorted(broken + lint_documents(docs))


def lint_documents(docs: Mapping[str, Any], known: Mapping[str, Any] | None = None) -> list[Violation]:
    """Violations of parsed flow documents keyed by file path. ``known`` adds flows that may be
    called as subflows without being linted themselves (those already on a server)."""
    flows = [_Flow(name, doc) for name, doc in docs.items()]
    by_ref: dict[tuple[Any, Any], dict[str, Any]] = {}
    for doc in (known or {}).values():
        if isinstance(doc, dict):
            by_ref[_ref(doc)] = doc
    seen: set[tuple[Any, Any]] = set()
    for flow in flows:
        if isinstance(flow.doc, dict):
            key = _ref(flow.doc)
            if key in seen:
                flow.add("id", "project/duplicate-flow", f"flow {key[0]}.{key[1]} is defined twice")
            seen.add(key)
            by_ref[key] = flow.doc
    for flow in flows:
        _lint_flow(flow, by_ref)
    return [v for flow in flows for v in flow.problems]


def _line(text: str) -> str:
    return one_line(text, limit=VIOLATION_LIMIT)


def _ref(
    doc: Mapping[str, Any], namespace: str = "namespace", flow_id: str = "id"
) -> tuple[Hashable, Hashable]:
    """(namespace, id) of a flow or a Subflow task's target, usable as a key whatever was written."""
    return rules.name_of(doc.get(namespace)), rules.name_of(doc.get(flow_id))


def _listed(value: Any) -> list[Any]:
    """A list property as a list ([] for anything else, which its own check reports)."""
    return value if isinstance(value, list) else []


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _duplicates(ids: list[Any]) -> list[Any]:
    return sorted({str(i) for i in ids if ids.count(i) > 1})


# -- one flow -----------------------------------------------------------------------------------------


def _lint_flow(flow: _Flow, by_ref: Mapping[tuple[Any, Any], dict[str, Any]]) -> None:
    doc = flow.doc
    if not isinstance(doc, dict):
        flow.add("", "kestra/flow", "a flow must be a YAML mapping")
        return
    _flow_keys(flow, doc)
    _flow_identity(flow, doc)
    inputs = _inputs(flow, doc.get("inputs"), "inputs")
    tasks = _tasks(flow, doc)
    order = {rules.name_of(t.doc.get("id")): i for i, t in enumerate(tasks)}
    by_id = {rules.name_of(t.doc.get("id")): t for t in tasks}
    scope = _Scope(flow, inputs, by_id, order, by_ref, _webhooks(doc))
    for i, task in enumerate(tasks):
        _lint_task(flow, task, by_ref)
        for where, text in _templates(_own_properties(task.doc), task.path):
            scope.check(where, text, reader=task, position=i)
    _outputs(flow, doc.get("outputs"), scope, len(tasks))
    _triggers(flow, doc.get("triggers"), inputs, scope)


def _flow_keys(flow: _Flow, doc: dict[str, Any]) -> None:
    for key in ("id", "namespace", "tasks"):
        if key not in doc:
            flow.add(key, "kestra/flow-property", f"missing '{key}'")
    for key in doc:
        if key not in FLOW_KEYS:
            flow.add(str(key), "kestra/flow-property", f"unknown flow property '{key}'")


def _flow_identity(flow: _Flow, doc: dict[str, Any]) -> None:
    """The flow's id and namespace as Kestra accepts them, and the file named after the id."""
    fid, ns = doc.get("id"), doc.get("namespace")
    if not isinstance(fid, str) or not rules.FLOW_ID.match(fid) or len(fid) > rules.MAX_ID:
        flow.add("id", "kestra/id", f"flow id {fid!r} does not match {rules.FLOW_ID.pattern}")
    if not isinstance(ns, str) or not rules.NAMESPACE.match(ns) or len(ns) > 150:
        flow.add("namespace", "kestra/id", f"namespace {ns!r} does not match {rules.NAMESPACE.pattern}")
    if isinstance(fid, str) and Path(flow.file).stem != fid:
        flow.add("id", "project/file-name", f"the file should be named {fid}.yaml")


def _tasks(flow: _Flow, doc: dict[str, Any]) -> list[_Task]:
    """Every task of the flow, nested ones included, in the order they are declared."""
    tasks: list[_Task] = []
    if not isinstance(doc.get("tasks"), list) or not doc["tasks"]:
        flow.add("tasks", "kestra/flow-property", "'tasks' must be a non-empty list")
    else:
        _walk(flow, doc["tasks"], "tasks", (), tasks)
    for tid in _duplicates([t.doc.get("id") for t in tasks]):
        flow.add("tasks", "kestra/duplicate-id", f"Duplicate task id with name [{tid}] (FlowValidator)")
    return tasks


def _webhooks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    triggers = doc.get("triggers") if isinstance(doc.get("triggers"), list) else []
    return [t for t in triggers if isinstance(t, dict) and t.get("type") == WEBHOOK]


def _entries(flow: _Flow, value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """The mappings of a list property (inputs, onResume, outputs, triggers), each with its path
    (``where[id]``); a property that is not a list, or an entry that is not a mapping, is reported."""
    if value is None:
        return []
    if not isinstance(value, list):
        flow.add(where, "kestra/flow-property", f"'{where}' must be a list")
        return []
    out = []
    for j, item in enumerate(value):
        at = f"{where}[{item.get('id') if isinstance(item, dict) else j}]"
        if isinstance(item, dict):
            out.append((at, item))
        else:
            flow.add(at, "kestra/flow-property", "must be a mapping")
    return out


def _inputs(flow: _Flow, inputs: Any, where: str) -> dict[str, dict[str, Any]]:
    declared: dict[str, dict[str, Any]] = {}
    entries = _entries(flow, inputs, where)
    for at, spec in entries:
        for rule, message in rules.input_problems(spec):
            flow.add(at, rule, message)
        for key in spec:
            if key not in INPUT_KEYS:
                flow.add(at, "kestra/input-property", f"unknown input property '{key}'")
        _legacy_type(flow, at, spec)
        declared[str(spec.get("id"))] = spec
    for iid in _duplicates([spec.get("id") for _, spec in entries]):
        flow.add(where, "kestra/duplicate-id", f"Duplicate input with name [{iid}] (FlowValidator)")
    return declared


def _legacy_type(flow: _Flow, where: str, spec: dict[str, Any]) -> None:
    newer = rules.LEGACY_INPUT_TYPES.get(rules.name_of(spec.get("type")))
    if newer is not None:
        flow.add(where, "project/legacy-type", f"type {spec['type']} is the older spelling: use {newer}")


def _walk(
    flow: _Flow, tasks: Any, where: str, branch: tuple[str, ...], out: list[_Task], loop: str | None = None
) -> None:
    if not isinstance(tasks, list):
        flow.add(where, "kestra/task-property", "must be a list of tasks")
        return
    for j, task in enumerate(tasks):
        if not isinstance(task, dict):
            flow.add(f"{where}[{j}]", "kestra/task-property", "a task must be a mapping")
            continue
        path = f"{where}[{task.get('id')}]"
        out.append(_Task(task, path, branch, loop))
        spec = TASK_TYPES.get(rules.name_of(task.get("type")))
        if spec is None:
            continue
        inner_loop = str(task.get("id")) if task.get("type") == LOOP_UNTIL else loop
        for child in spec.children:
            if child in task:
                inner = (*branch, f"{task.get('id')}.{child}") if spec.conditional else branch
                _walk(flow, task[child], f"{path}.{child}", inner, out, inner_loop)
        if task.get("type") == SWITCH and isinstance(task.get("cases"), dict):
            for case, sub in task["cases"].items():
                cased = (*branch, f"{task.get('id')}.cases.{case}")
                _walk(flow, sub, f"{path}.cases[{case}]", cased, out, inner_loop)


def _own_properties(task: dict[str, Any]) -> dict[str, Any]:
    """A task's properties Kestra renders, without its child tasks and onResume inputs."""
    spec = TASK_TYPES.get(rules.name_of(task.get("type")))
    drop = set(spec.children if spec else ()) | {"cases", "onResume"} | NOT_RENDERED
    return {k: v for k, v in task.items() if k not in drop}


def _templates(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if is_template(value):
            yield where, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _templates(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for j, inner in enumerate(value):
            yield from _templates(inner, f"{where}[{j}]")


def _props(flow: _Flow, obj: dict[str, Any], spec: TaskType, where: str) -> None:
    for key in sorted(spec.required):
        if key not in obj:
            flow.add(where, "kestra/task-property", f"missing required property '{key}'")
    for key in obj:
        if key not in spec.allowed:
            flow.add(where, "kestra/task-property", f"unknown property '{key}'")


def _lint_task(flow: _Flow, task: _Task, by_ref: Mapping[tuple[Any, Any], dict[str, Any]]) -> None:
    doc, where = task.doc, task.path
    tid, ttype = doc.get("id"), doc.get("type")
    if not isinstance(tid, str) or not rules.TASK_ID.match(tid) or len(tid) > rules.MAX_ID:
        flow.add(where, "kestra/id", f"task id {tid!r} does not match {rules.TASK_ID.pattern}")
    spec = TASK_TYPES.get(rules.name_of(ttype))
    if spec is None:
        flow.add(where, "kestra/task-type", f"task type {ttype!r} is not in the table of known types")
        return
    _props(flow, doc, spec, where)
    if ttype == COMMANDS:
        _lint_commands(flow, doc, where)
    elif ttype == SUBFLOW:
        _lint_subflow(flow, doc, where, by_ref)
    elif ttype == PAUSE:
        _lint_pause(flow, doc, where, task)
    elif ttype == LOOP_UNTIL:
        _lint_loop(flow, doc, where)
    elif ttype == SWITCH and (not isinstance(doc.get("cases"), dict) or not doc["cases"]):
        flow.add(where, "kestra/task-property", "'cases' must be a non-empty mapping")
    elif ttype == LOG and rules.name_of(doc.get("level", "INFO")) not in LOG_LEVELS:
        flow.add(where, "kestra/task-property", f"level {doc.get('level')!r} is not a log level")


def _lint_commands(flow: _Flow, doc: dict[str, Any], where: str) -> None:
    if doc.get("containerImage") != PROJECT_IMAGE:
        flow.add(
            where, "project/container-image", f"containerImage must be the project image {PROJECT_IMAGE}"
        )
    runner = doc.get("taskRunner")
    if runner is not None:
        rtype = rules.name_of(runner.get("type")) if isinstance(runner, dict) else None
        if rtype not in RUNNER_KEYS:
            flow.add(f"{where}.taskRunner", "kestra/task-type", f"task runner type {rtype!r} is not known")
        else:
            for key in runner:
                if key not in RUNNER_KEYS[rtype]:
                    flow.add(f"{where}.taskRunner", "kestra/task-property", f"unknown property '{key}'")
            if "pullPolicy" in runner and rules.name_of(runner["pullPolicy"]) not in PULL_POLICIES:
                flow.add(
                    f"{where}.taskRunner",
                    "kestra/task-property",
                    f"pullPolicy {runner['pullPolicy']!r} is not one of {sorted(PULL_POLICIES)}",
                )
    for name in ("env", "inputFiles"):
        if name in doc and not isinstance(doc[name], dict):
            flow.add(f"{where}.{name}", "kestra/task-property", f"'{name}' must be a mapping")
    commands = doc.get("commands")
    if not isinstance(commands, list) or not commands:
        flow.add(f"{where}.commands", "kestra/task-property", "'commands' must be a non-empty list")
        return
    for cmd in commands:
        m = STEP_COMMAND.match(str(cmd))
        if not m or m.group(1) not in STEP_TASKS:
            flow.add(
                f"{where}.commands",
                "project/step-command",
                f"command {cmd!r} is not `python -m console step NAME FILE --kestra`",
            )
        elif not isinstance(doc.get("inputFiles"), dict) or m.group(2) not in doc["inputFiles"]:
            flow.add(
                f"{where}.commands",
                "project/input-file",
                f"the step reads {m.group(2)} but inputFiles does not provide it",
            )


def _lint_subflow(
    flow: _Flow, doc: dict[str, Any], where: str, by_ref: Mapping[tuple[Any, Any], dict[str, Any]]
) -> None:
    target_ref = _ref(doc, flow_id="flowId")
    if isinstance(flow.doc, dict) and target_ref == _ref(flow.doc):
        flow.add(
            where,
            "kestra/recursive-subflow",
            f"Recursive call to flow [{target_ref[0]}.{target_ref[1]}] (FlowValidator)",
        )
    target = by_ref.get(target_ref)
    if target is None:
        flow.add(where, "project/subflow-target", f"subflow {target_ref[0]}.{target_ref[1]} is not in flows/")
    else:
        declared = {
            rules.name_of(i.get("id")): i for i in _listed(target.get("inputs")) if isinstance(i, dict)
        }
        given = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
        _given_inputs(flow, where, given, declared, "subflow-input", str(target_ref[1]))
    if doc.get("wait") is not True or doc.get("transmitFailed") is not True:
        flow.add(where, "project/subflow-wait", "subflows must set wait: true and transmitFailed: true")


def _given_inputs(
    flow: _Flow,
    where: str,
    given: Mapping[str, Any],
    declared: Mapping[Any, dict[str, Any]],
    rule: str,
    to: str,
) -> None:
    """Inputs passed to a flow (by a Subflow task, by a Webhook trigger) against what it declares, as
    ``FlowInputOutput.resolveInputs`` takes them: an undeclared one is dropped with a warning, and a
    required one without ``defaults`` that is not given refuses every start."""
    for key in given:
        if key not in declared:
            flow.add(f"{where}.inputs.{key}", f"project/{rule}",
                     f"'{key}' is not an input of {to} (Kestra drops it with a warning)")  # fmt: skip
    for key, spec in declared.items():
        if spec.get("required", True) and spec.get("defaults") is None and key not in given:
            flow.add(f"{where}.inputs", f"runtime/{rule}",
                     f"required input '{key}' of {to} is not given: it cannot start")  # fmt: skip


def _lint_pause(flow: _Flow, doc: dict[str, Any], where: str, task: _Task) -> None:
    """Two kinds of Pause: an approval (``onResume`` inputs) that rejects when nobody decides in
    time, and a timer (no ``onResume``: the wait between two looks of a watch, inside a LoopUntil)
    that carries on when its duration is over."""
    duration = doc.get("pauseDuration")
    templated = isinstance(duration, str) and is_template(duration)
    valid = isinstance(duration, str) and (
        templated or (ISO_DURATION.match(duration) and duration not in {"P", "PT"})
    )
    if not valid:
        flow.add(where, "project/pause-duration", "a Pause needs an ISO-8601 pauseDuration")
    if doc.get("onResume"):
        if rules.name_of(doc.get("behavior")) not in PAUSE_BEHAVIORS_REJECTING:
            flow.add(
                where,
                "project/pause-behavior",
                f"Pause behavior must be CANCEL or FAIL (got {doc.get('behavior')!r}; "
                "Kestra's default RESUME approves what nobody approved)",
            )
    else:
        if doc.get("behavior") != "RESUME":
            flow.add(
                where,
                "project/pause-behavior",
                "a Pause without onResume is a timer: its behavior must say RESUME (the run goes on)",
            )
        if task.loop is None:
            flow.add(
                where, "project/timer-pause", "a timer Pause belongs inside a LoopUntil (between two looks)"
            )
    if "delay" in doc:
        flow.add(where, "project/pause-delay", "'delay' is the pre-0.22 property; use pauseDuration")
    declared = _inputs(flow, doc.get("onResume") or [], f"{where}.onResume")
    if doc.get("id") == "approval":
        kinds = {iid: spec.get("type") for iid, spec in declared.items()}
        if kinds != APPROVAL_INPUTS:
            flow.add(
                f"{where}.onResume",
                "project/approval-inputs",
                "onResume must be approved BOOL, comment STRING, approver STRING, rollback_target JSON "
                "(what the console sends)",
            )
        elif any(
            declared[iid].get("required", True) != (iid not in OPTIONAL_APPROVAL_INPUTS) for iid in declared
        ):
            flow.add(
                f"{where}.onResume",
                "project/approval-inputs",
                "comment and rollback_target are optional (required: false); approved and approver "
                "are required",
            )


def _lint_loop(flow: _Flow, doc: dict[str, Any], where: str) -> None:
    """A LoopUntil says how often and how long: 1.3's defaults are a one-minute interval and no
    limit at all (migration guide 0.23), so a watch that never decides would loop forever."""
    frequency = doc.get("checkFrequency")
    if not isinstance(frequency, dict):
        flow.add(where, "project/loop-bounds", "set checkFrequency (interval, maxDuration): 1.3 has no limit")
        return
    for key in frequency:
        if key not in CHECK_FREQUENCY_KEYS:
            flow.add(f"{where}.checkFrequency", "kestra/task-property", f"unknown property '{key}'")
    for key in ("interval", "maxDuration"):
        value = frequency.get(key)
        if not isinstance(value, str) or not ISO_DURATION.match(value) or value in {"P", "PT"}:
            flow.add(
                f"{where}.checkFrequency", "project/loop-bounds", f"'{key}' must be an ISO-8601 duration"
            )
    if doc.get("failOnMaxReached") is not True:
        flow.add(
            where, "project/loop-bounds", "failOnMaxReached: true (a loop that ran out must fail, visibly)"
        )


def _outputs(flow: _Flow, outputs: Any, scope: _Scope, after: int) -> None:
    entries = _entries(flow, outputs, "outputs")
    for where, out in entries:
        for key in out:
            if key not in OUTPUT_KEYS:
                flow.add(where, "kestra/output-property", f"unknown output property '{key}'")
        if not isinstance(out.get("id"), str) or not rules.INPUT_ID.match(out["id"]):
            flow.add(where, "kestra/id", f"output id {out.get('id')!r} is not valid")
        if rules.name_of(out.get("type")) not in rules.INPUT_TYPES:
            flow.add(where, "kestra/output-property", f"type {out.get('type')!r} is not a Kestra type (Type)")
        _legacy_type(flow, where, out)
        if "value" not in out:
            flow.add(where, "kestra/output-property", "missing 'value'")
        for at, text in _templates(out.get("value"), f"{where}.value"):
            scope.check(at, text, reader=None, position=after)
    for oid in _duplicates([out.get("id") for _, out in entries]):
        flow.add("outputs", "kestra/duplicate-id", f"Duplicate output with name [{oid}] (FlowValidator)")


def _triggers(flow: _Flow, triggers: Any, inputs: Mapping[str, dict[str, Any]], scope: _Scope) -> None:
    entries = _entries(flow, triggers, "triggers")
    for where, trig in entries:
        spec = TRIGGER_TYPES.get(rules.name_of(trig.get("type")))
        if spec is None:
            flow.add(where, "kestra/task-type", f"trigger type {trig.get('type')!r} is not in the table")
            continue
        _props(flow, trig, spec, where)
        if trig.get("type") == WEBHOOK:
            _lint_webhook(flow, trig, where, inputs, scope)
    for tid in _duplicates([trig.get("id") for _, trig in entries]):
        flow.add("triggers", "kestra/duplicate-id", f"Duplicate trigger id with name [{tid}] (FlowValidator)")


def _lint_webhook(
    flow: _Flow, trig: dict[str, Any], where: str, inputs: Mapping[str, dict[str, Any]], scope: _Scope
) -> None:
    key = trig.get("key")
    if not isinstance(key, str) or not SECRET_KEY.match(key.strip()):
        flow.add(
            f"{where}.key",
            "project/webhook-key",
            "the key is the webhook's only guard on a default Kestra: read it from a Kestra secret, "
            "{{ secret('NAME') }} (docs/kestra.md)",
        )
    given = trig.get("inputs")
    if given is None:
        return
    if not isinstance(given, dict):
        flow.add(f"{where}.inputs", "kestra/task-property", "'inputs' must be a mapping")
        return
    _given_inputs(flow, where, given, inputs, "webhook-input", "the flow")
    for at, text in _templates(given, f"{where}.inputs"):
        scope.check_trigger_inputs(at, text)


# -- what templates read ------------------------------------------------------------------------------


@dataclass
class _Scope:
    """What the expressions of one flow may read, on every way an execution of it starts."""

    flow: _Flow
    inputs: Mapping[str, dict[str, Any]]
    tasks: Mapping[Any, _Task]
    order: Mapping[Any, int]
    by_ref: Mapping[tuple[Any, Any], dict[str, Any]]
    webhooks: list[dict[str, Any]]

    def _compile(self, where: str, text: str) -> list[Read] | None:
        try:
            return compile_template(text).reads()
        except PebbleSyntaxError as exc:
            self.flow.add(where, "runtime/pebble", str(exc))
            return None

    def check_trigger_inputs(self, where: str, text: str) -> None:
        """A Webhook trigger's ``inputs`` render with the trigger's variables only."""
        for read in self._compile(where, text) or []:
            root = read.path[0]
            if root != "trigger":
                self.flow.add(
                    where,
                    "runtime/unknown-variable",
                    f"`{'.'.join(read.path)}`: a trigger's inputs can only read `trigger`",
                )
            elif not read.guarded and read.path[1:2] == ("body",):
                self.flow.add(
                    where,
                    "runtime/trigger-unguarded",
                    f"`{'.'.join(read.path)}` fails when the caller's body lacks it: use `?? default`",
                )

    def check(self, where: str, text: str, *, reader: _Task | None, position: int) -> None:
        for read in self._compile(where, text) or []:
            self._check_read(where, read, reader, position)

    def _check_read(self, where: str, read: Read, reader: _Task | None, position: int) -> None:
        path, shown = read.path, _shown(read)
        root = path[0]
        if root not in EXECUTION_ROOTS:
            self.flow.add(
                where, "runtime/unknown-variable", f"{shown}: Kestra gives tasks no `{root}` variable"
            )
        elif root == "inputs" and len(path) > 1:
            if path[1] not in self.inputs:
                self.flow.add(
                    where, "runtime/undeclared-input", f"{shown}: the flow declares no input '{path[1]}'"
                )
            elif not read.guarded:
                for trig in self.webhooks:
                    if not rules.webhook_declares_inputs(trig):
                        self.flow.add(
                            where,
                            "runtime/webhook-inputs",
                            f"{shown} is undefined on executions of webhook '{trig.get('id')}', which "
                            "declares no inputs (strict Pebble): give the trigger `inputs`",
                        )
        elif root == "trigger" and not read.guarded:
            self.flow.add(
                where,
                "runtime/trigger-unguarded",
                f"{shown} is undefined on executions started through the API (no trigger) or when the "
                "body lacks it: guard it with `??`",
            )
        elif root == "outputs" and len(path) > 1:
            self._check_output(where, read, reader, position)

    def _check_output(self, where: str, read: Read, reader: _Task | None, position: int) -> None:
        path, shown = read.path, _shown(read)
        task = self.tasks.get(path[1])
        if task is None:
            self.flow.add(where, "runtime/output-ref", f"{shown} refers to no task of this flow")
            return
        self._check_output_runs(where, read, task, reader, position)
        spec = TASK_TYPES.get(rules.name_of(task.doc.get("type")))
        if spec is None or len(path) < 3:
            return
        if path[2] not in spec.output_attrs:
            kind = str(task.doc.get("type")).rsplit(".", 1)[-1]
            self.flow.add(where, "runtime/output-ref", f"{shown}: a {kind} task has no '{path[2]}' output")
            return
        if len(path) >= 4:
            self._check_output_field(where, read, task)

    def _check_output_runs(
        self, where: str, read: Read, task: _Task, reader: _Task | None, position: int
    ) -> None:
        """The task read has run before the reader, and on every execution the reader runs on (or
        the read is guarded)."""
        path, shown = read.path, _shown(read)
        if reader is not None and self.order[path[1]] >= position and not _inside(reader, task):
            self.flow.add(where, "runtime/output-ref", f"{shown}: task {path[1]} has not run yet")
        reader_branch = reader.branch if reader is not None else ()
        if reader_branch[: len(task.branch)] != task.branch and not read.guarded:
            self.flow.add(
                where,
                "runtime/conditional-output",
                f"{shown}: task {path[1]} runs only on some executions: guard the read with `??`",
            )

    def _check_output_field(self, where: str, read: Read, task: _Task) -> None:
        """``outputs.<subflow>.outputs.X`` is an output the called flow declares (when it is known);
        ``outputs.<pause>.onResume.X`` an input the Pause declares."""
        kind, attr = task.doc.get("type"), read.path[2]
        if kind == SUBFLOW and attr == "outputs":
            self._check_subflow_output(where, read, task.doc)
        if kind == PAUSE and attr == "onResume":
            declared = {
                rules.name_of(i.get("id")) for i in _listed(task.doc.get("onResume")) if isinstance(i, dict)
            }
            if read.path[3] not in declared:
                self.flow.add(
                    where, "runtime/output-ref", f"{_shown(read)}: '{read.path[3]}' is not an onResume input"
                )

    def _check_subflow_output(self, where: str, read: Read, doc: dict[str, Any]) -> None:
        target = self.by_ref.get(_ref(doc, flow_id="flowId"))
        declared = {
            rules.name_of(o.get("id")) for o in _listed((target or {}).get("outputs")) if isinstance(o, dict)
        }
        if target is not None and read.path[3] not in declared:
            self.flow.add(
                where,
                "runtime/output-ref",
                f"{_shown(read)}: '{read.path[3]}' is not an output of {doc.get('flowId')}",
            )


def _shown(read: Read) -> str:
    """A read as messages quote it: `outputs.collect.vars.snapshot`."""
    return "`" + ".".join(read.path) + "`"


def _inside(reader: _Task, task: _Task) -> bool:
    """Whether ``task`` is the reader itself or nested in it (an If reading its own children)."""
    return reader.doc is task.doc or task.path.startswith(reader.path + ".")
