"""The kubectl executor: acts on one Deployment of a real cluster through the ``kubectl`` binary.

Commands (``<k>`` is the configured binary; ``--context=C`` and ``--kubeconfig=K`` end every command
when configured; ``--dry-run=server`` ends every changing command in server dry-run mode):

- ``rollback_deployment``: ``<k> rollout undo deployment/<name> -n <ns> --to-revision=N`` then
  ``<k> rollout status deployment/<name> -n <ns> --timeout=<t>s``. ``N`` is ``params.revision`` (a
  Kubernetes revision number) or the newest revision whose container image is tagged with the
  loop's target version (``params.to_version``), found with ``<k> get rs -n <ns> -l <selector> -o
  json``; without either the rollback is refused (kubectl's own "previous revision" may be the
  known-bad one).
- ``restart_pod``: ``<k> rollout restart deployment/<name> -n <ns>`` then the same status command.
- ``scale_deployment``: ``<k> scale deployment/<name> -n <ns> --replicas=N`` then the status command;
  ``N`` from ``params.replicas`` (1 .. ``max_replicas``), refused without it.
- ``increase_resources``: ``<k> set resources deployment/<name> -n <ns> [-c <container>]
  [--limits=cpu=..,memory=..] [--requests=cpu=..,memory=..]`` then the status command; quantities
  from ``params.limits`` / ``params.requests`` (validated; a request above its limit is refused).
- ``collect_diagnostics``: ``<k> describe deployment/<name> -n <ns>`` and
  ``<k> get events -n <ns> --sort-by=.lastTimestamp`` (read-only, also in dry-run mode), kept as
  bounded evidence (literal values of secret-looking environment variables in ``describe`` masked).
- ``notify_only``: runs nothing. ``failover_database``: refused.

Server dry run (``dry_run: server``): the changing command runs with ``--dry-run=server`` and no
status wait follows. The result is ``done`` when the API server accepted the change, with
``dry_run=True``: :attr:`ActionResult.changed` is false and the label reads "rollback (server dry
run)", never "rolled back". ``kubectl rollout restart`` has no ``--dry-run`` flag, so a dry-run
restart sends the patch ``rollout restart`` would send (the ``kubectl.kubernetes.io/restartedAt``
pod-template annotation) as ``<k> patch deployment/<name> -n <ns> --type=merge -p <json>
--dry-run=server``.

The service's state (:meth:`KubectlExecutor.probe`): ``<k> get deployment/<name> -n <ns> -o json``
(the version is the tag of the container's image, ``container`` or the first; the revision
annotation; ready when the ready and updated replicas reach the desired count) and ``<k> get pods
-n <ns> -l <selector> -o json`` (their containers' restart counts). ``rollout undo`` cannot carry an
expected revision, so the loop's check right before the call narrows a race with another change; it
cannot close it (the demo deployer's ``expected_version`` does).

Every command runs through ``subprocess.run`` with an argument list (no shell), a timeout and
captured, bounded output; a non-zero exit is a failed result naming the command, its exit code and
the last line of its error output. A changing command that times out is ``unknown`` (the API server
may have applied it); a failure after the change was applied (the rollout status wait) leaves the
result ``done`` with the problem said: the change happened, its health is what verify measures.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from console.domain.actions import (
    COLLECT_DIAGNOSTICS,
    FAILOVER_DATABASE,
    INCREASE_RESOURCES,
    NOTIFY_ONLY,
    RESTART,
    ROLLBACK,
    SCALE,
)
from console.domain.config_reader import ConfigReader
from console.domain.models import now_text
from console.executors.base import (
    ActionFailed,
    ActionRefused,
    ActionRequest,
    ActionUnknown,
    BaseExecutor,
    ExecutorConfigError,
    Handler,
    ProbeError,
    RunLog,
    ServiceState,
    bounded,
    last_line,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
CONTEXT_NAME = re.compile(r"^[^\s-][^\s]*$")

OUTPUT_LIMIT = 2000
"""Characters of stdout/stderr kept per command in the evidence (the end of the output)."""
DIAGNOSTICS_LIMIT = 16000
"""Characters kept of ``describe`` and of the events list."""
RESOURCE_NAMES = ("cpu", "memory")

_SECRET_ENV_LINE = re.compile(
    r"^(\s+[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|CREDENTIALS?)[A-Z0-9_]*:\s+)"
    r"(?!<set to)\S.*$",
    re.MULTILINE,
)


def mask_env_values(text: str) -> str:
    """``describe`` output with the literal values of secret-looking environment variables masked
    (values from a Secret show as "<set to the key ...>" and are kept)."""
    return _SECRET_ENV_LINE.sub(r"\1***", text)


_QUANTITY = re.compile(r"^(?P<num>\d+(\.\d+)?|\.\d+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": "1e-9",
    "u": "1e-6",
    "m": "1e-3",
    "k": "1e3",
    "M": "1e6",
    "G": "1e9",
    "T": "1e12",
    "P": "1e15",
    "E": "1e18",
}


def parse_quantity(text: str) -> Decimal | None:
    """A Kubernetes resource quantity ("500m", "1.5", "512Mi", "1e3") as a number; None if invalid."""
    match = _QUANTITY.match(text)
    if not match:
        return None
    try:
        value = Decimal(match["num"])
    except InvalidOperation:
        return None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * Decimal(_DECIMAL[suffix])
    if suffix:
        return value * Decimal(10) ** int(suffix[1:])
    return value


@dataclass(frozen=True)
class _Step:
    args: list[str]
    """kubectl's arguments (without the binary and the global flags)."""
    what: str
    """How a failure names it, e.g. "rollout undo"."""
    timeout_s: float
    changes: bool = False


class KubectlExecutor(BaseExecutor):
    name = "kubectl"
    simulated = False
    KEYS = (
        "namespace",
        "deployment",
        "context",
        "kubeconfig",
        "container",
        "dry_run",
        "rollout_timeout_s",
        "command_timeout_s",
        "kubectl",
        "max_replicas",
    )

    def __init__(
        self,
        namespace: str,
        deployment: str,
        *,
        context: str | None = None,
        kubeconfig: str | None = None,
        container: str | None = None,
        dry_run: str = "none",
        rollout_timeout_s: float = 300.0,
        command_timeout_s: float = 60.0,
        kubectl: str = "kubectl",
        max_replicas: int = 20,
    ) -> None:
        self.namespace = namespace
        self.deployment = deployment
        self.context = context
        self.kubeconfig = kubeconfig
        self.container = container
        self.dry_run = dry_run == "server"
        self.rollout_timeout_s = rollout_timeout_s
        self.command_timeout_s = command_timeout_s
        self.kubectl = kubectl
        self.max_replicas = max_replicas

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "executor") -> KubectlExecutor:
        check = ConfigReader()
        check.keys(config, where, ("type", *cls.KEYS), kind=cls.name)
        namespace = check.name(
            config, "namespace", where, DNS_LABEL, "a Kubernetes namespace name", required=True
        )
        deployment = check.name(
            config, "deployment", where, DNS_SUBDOMAIN, "a Kubernetes Deployment name", required=True
        )
        context = check.name(config, "context", where, CONTEXT_NAME, "a kubeconfig context name")
        kubeconfig = check.string(config, "kubeconfig", where)
        container = check.name(config, "container", where, DNS_LABEL, "a container name")
        raw_dry_run = config.get("dry_run")
        if isinstance(raw_dry_run, bool):  # YAML reads `dry_run: no` as false
            dry_run = "server" if raw_dry_run else "none"
        else:
            dry_run = check.choice(config, "dry_run", where, ("server", "none"), "none")
        rollout_timeout_s = check.number(config, "rollout_timeout_s", where, 300.0, maximum=3600)
        command_timeout_s = check.number(config, "command_timeout_s", where, 60.0, maximum=3600)
        kubectl = check.string(config, "kubectl", where, default="kubectl") or "kubectl"
        max_replicas = int(check.number(config, "max_replicas", where, 20, integer=True, maximum=1000))
        if check.problems:
            raise ExecutorConfigError(check.problems)
        assert namespace is not None and deployment is not None
        return cls(
            namespace,
            deployment,
            context=context,
            kubeconfig=kubeconfig,
            container=container,
            dry_run=dry_run,
            rollout_timeout_s=rollout_timeout_s,
            command_timeout_s=command_timeout_s,
            kubectl=kubectl,
            max_replicas=max_replicas,
        )

    # -- what it does and refuses ----------------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"deployment/{self.deployment}"

    def _handlers(self) -> Mapping[str, Handler]:
        return {
            ROLLBACK: self._rollback,
            RESTART: self._restart,
            SCALE: self._scale,
            INCREASE_RESOURCES: self._resources,
            COLLECT_DIAGNOSTICS: self._diagnostics,
            NOTIFY_ONLY: self._notify,
        }

    def _refusals(self) -> Mapping[str, str]:
        return {
            FAILOVER_DATABASE: f"a database failover is not a change to {self.target} "
            "(configure a webhook executor for it)",
        }

    def argv(self, args: list[str]) -> list[str]:
        """The full command line of one step: binary, arguments, then the global flags."""
        argv = [self.kubectl, *args]
        if self.context:
            argv.append(f"--context={self.context}")
        if self.kubeconfig:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        return argv

    def _dry(self) -> list[str]:
        return ["--dry-run=server"] if self.dry_run else []

    def _status_step(self) -> _Step:
        return _Step(
            [
                "rollout",
                "status",
                self.target,
                "-n",
                self.namespace,
                f"--timeout={self.rollout_timeout_s:g}s",
            ],
            "rollout status",
            self.rollout_timeout_s + 30,
        )

    def _change(self, args: list[str], what: str) -> list[_Step]:
        """A changing command, then (unless a dry run) the rollout status wait."""
        steps = [_Step([*args, *self._dry()], what, self.command_timeout_s, changes=True)]
        if not self.dry_run:
            steps.append(self._status_step())
        return steps

    def plan(self, request: ActionRequest, revision: int | str | None = None) -> list[_Step]:
        """The commands for ``request``, in order; ActionRefused when its params are not usable.
        ``revision``: the rollback's revision when it was resolved from the target version."""
        target, ns = self.target, self.namespace
        action = request.action
        if action == ROLLBACK:
            revision = _revision(request.params) or revision
            if revision is None:
                if not request.target_version:
                    raise ActionRefused(NO_TARGET)
                revision = f"<the revision running {request.target_version}>"
            return self._change(
                ["rollout", "undo", target, "-n", ns, f"--to-revision={revision}"], "rollout undo"
            )
        if action == RESTART:
            if self.dry_run:
                annotation = {"kubectl.kubernetes.io/restartedAt": now_text()}
                patch = {"spec": {"template": {"metadata": {"annotations": annotation}}}}
                args = ["patch", target, "-n", ns, "--type=merge", "-p", json.dumps(patch, sort_keys=True)]
                return [_Step([*args, *self._dry()], "patch (rollout restart)", self.command_timeout_s, True)]
            return self._change(["rollout", "restart", target, "-n", ns], "rollout restart")
        if action == SCALE:
            replicas = self._replicas(request.params)
            return self._change(["scale", target, "-n", ns, f"--replicas={replicas}"], "scale")
        if action == INCREASE_RESOURCES:
            limits, requests = _resources(request.params)
            args = ["set", "resources", target, "-n", ns]
            if self.container:
                args += ["-c", self.container]
            if limits:
                args.append(f"--limits={_join(limits)}")
            if requests:
                args.append(f"--requests={_join(requests)}")
            return self._change(args, "set resources")
        if action == COLLECT_DIAGNOSTICS:
            return [
                _Step(["describe", target, "-n", ns], "describe", self.command_timeout_s),
                _Step(
                    ["get", "events", "-n", ns, "--sort-by=.lastTimestamp"],
                    "get events",
                    self.command_timeout_s,
                ),
            ]
        return []  # notify_only

    def _describe_action(self, request: ActionRequest) -> str:
        steps = self.plan(request)
        if not steps:
            return f"no change to {self.target} in {self.namespace} (notify only)"
        return " ; then ".join(shlex.join(self.argv(step.args)) for step in steps)

    def _replicas(self, params: Mapping[str, Any]) -> int:
        value = params.get("replicas")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.max_replicas:
            shown = "none given" if value is None else f"got {value!r}"
            raise ActionRefused(
                f"scale_deployment needs params.replicas, a whole number from 1 to {self.max_replicas} "
                f"({shown})"
            )
        return value

    # -- running -----------------------------------------------------------------------------------------

    def _exec(self, step: _Step, log: RunLog) -> subprocess.CompletedProcess[str]:
        argv = self.argv(step.args)
        log.command(shlex.join(argv))
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=step.timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            where = "on PATH" if "/" not in self.kubectl else "at that path"
            raise ActionFailed(
                f"kubectl not found: {self.kubectl!r} is not {where} (set executor.kubectl to its path)"
            ) from None
        except PermissionError:
            raise ActionFailed(f"cannot run {self.kubectl!r}: permission denied") from None
        except subprocess.TimeoutExpired:
            line = f"kubectl {step.what} did not finish within {step.timeout_s:g} s"
            if step.changes:  # the API server may have applied it before kubectl was stopped
                raise ActionUnknown(f"{line}: the change may have been applied") from None
            raise ActionFailed(line) from None
        except OSError as exc:
            raise ActionFailed(f"cannot run {self.kubectl!r}: {exc.strerror or type(exc).__name__}") from None
        log.evidence.setdefault("kubectl", []).append(
            {
                "command": shlex.join(argv),
                "exit_code": done.returncode,
                "stdout": bounded(done.stdout, OUTPUT_LIMIT),
                "stderr": bounded(done.stderr, OUTPUT_LIMIT),
            }
        )
        if done.returncode != 0:
            why = last_line(done.stderr) or last_line(done.stdout) or "no error output"
            raise ActionFailed(f"kubectl {step.what} exited {done.returncode}: {why}")
        return done

    def _run_plan(
        self, request: ActionRequest, log: RunLog, revision: int | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        steps = self.plan(request, revision)
        log.dry_run = self.dry_run and any(step.changes for step in steps)
        outputs: list[subprocess.CompletedProcess[str]] = []
        applied: str | None = None
        for step in steps:
            try:
                outputs.append(self._exec(step, log))
            except (ActionFailed, ActionUnknown) as exc:
                if applied is None:
                    raise
                # the change happened: never "failed"; what did not follow is said, verify measures
                log.evidence["after_change"] = f"{exc} ({applied} was applied)"
                break
            if step.changes:
                applied = f"kubectl {step.what}"
        return outputs

    def _outcome(self, outputs: list[subprocess.CompletedProcess[str]], done_text: str, log: RunLog) -> str:
        where = f"{self.target} in {self.namespace}"
        if self.dry_run:
            answer = last_line(outputs[0].stdout) or "ok"
            return f"server dry run accepted for {where}: {answer}; nothing changed"
        if log.evidence.get("after_change"):
            return f"{where} {done_text}; but {log.evidence['after_change']}"
        status = last_line(outputs[-1].stdout) or "rollout complete"
        return f"{where} {done_text}; {status}"

    # -- the service's state --------------------------------------------------------------------------

    def _get_json(self, args: list[str], log: RunLog) -> dict[str, Any]:
        done = self._exec(_Step(args, f"get {args[1]}", self.command_timeout_s), log)
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            raise ActionFailed(f"kubectl get {args[1]} printed no JSON") from None
        if not isinstance(doc, dict):
            raise ActionFailed(f"kubectl get {args[1]} printed no JSON object")
        return doc

    def _deployment_doc(self, log: RunLog) -> dict[str, Any]:
        return self._get_json(["get", self.target, "-n", self.namespace, "-o", "json"], log)

    def _selector(self, deployment: Mapping[str, Any]) -> str | None:
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if not isinstance(labels, dict) or not labels:
            return None
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def _image_version(self, template: Mapping[str, Any]) -> str | None:
        containers = ((template.get("spec") or {}).get("containers")) or []
        chosen = (
            next((c for c in containers if c.get("name") == self.container), None) if self.container else None
        )
        chosen = chosen or (containers[0] if containers else None)
        image = str((chosen or {}).get("image") or "")
        return image_tag(image)

    def _probe(self, service: str) -> ServiceState:
        log = RunLog()
        try:
            doc = self._deployment_doc(log)
            meta, spec, status = doc.get("metadata") or {}, doc.get("spec") or {}, doc.get("status") or {}
            desired = int(spec.get("replicas", 1) or 0)
            ready_count = int(status.get("readyReplicas") or 0)
            updated = int(status.get("updatedReplicas") or 0)
            rolling = int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0) or (
                updated < desired or int(status.get("replicas") or 0) > updated
            )
            restarts = self._restarts(self._selector(doc), log)
        except (ActionFailed, ActionUnknown, ValueError, TypeError, AttributeError) as exc:
            raise ProbeError(f"cannot read {self.target} in {self.namespace}: {exc}") from None
        return ServiceState(
            version=self._image_version(spec.get("template") or {}),
            ready=ready_count >= desired and not rolling,
            restarts=restarts,
            deploying=rolling,
            revision=(meta.get("annotations") or {}).get("deployment.kubernetes.io/revision"),
            replicas=desired,
            observed_at=now_text(),
            source=f"kubectl get {self.target} -n {self.namespace} -o json",
        )

    def _restarts(self, selector: str | None, log: RunLog) -> int | None:
        """The restart count of the Deployment's pods' containers (None when they cannot be listed:
        the Deployment's own state still stands)."""
        if not selector:
            return None
        try:
            pods = self._get_json(["get", "pods", "-n", self.namespace, "-l", selector, "-o", "json"], log)
            return sum(
                int(c.get("restartCount") or 0)
                for pod in pods.get("items") or []
                for c in (pod.get("status") or {}).get("containerStatuses") or []
            )
        except (ActionFailed, ActionUnknown, ValueError, TypeError, AttributeError):
            return None

    def _revision_of(self, version: str, log: RunLog) -> int:
        """The newest revision of the Deployment whose image is tagged ``version``."""
        doc = self._deployment_doc(log)
        selector = self._selector(doc)
        if selector is None:
            raise ActionRefused(f"{self.target} has no label selector to find its ReplicaSets by")
        sets = self._get_json(["get", "rs", "-n", self.namespace, "-l", selector, "-o", "json"], log)
        found: list[tuple[int, str | None]] = []
        for item in sets.get("items") or []:
            meta = item.get("metadata") or {}
            revision = str((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision") or "")
            if revision.isdigit():
                found.append(
                    (int(revision), self._image_version((item.get("spec") or {}).get("template") or {}))
                )
        matching = [number for number, tag in found if tag == version]
        if not matching:
            known = ", ".join(f"{n}: {tag}" for n, tag in sorted(found)) or "none"
            raise ActionRefused(f"no revision of {self.target} runs {version} (revisions {known})")
        return max(matching)

    # -- actions -----------------------------------------------------------------------------------------

    def _rollback(self, request: ActionRequest, log: RunLog) -> str:
        revision = _revision(request.params)
        if revision is None:
            if not request.target_version:
                raise ActionRefused(NO_TARGET)
            revision = self._revision_of(request.target_version, log)
        outputs = self._run_plan(request, log, revision)
        log.evidence["revision"] = revision
        to = (
            f" to {request.target_version} (revision {revision})"
            if request.target_version
            else f" to revision {revision}"
        )
        return self._outcome(outputs, "rolled back" + to, log)

    def _restart(self, request: ActionRequest, log: RunLog) -> str:
        return self._outcome(self._run_plan(request, log), "restarted", log)

    def _scale(self, request: ActionRequest, log: RunLog) -> str:
        replicas = self._replicas(request.params)
        outputs = self._run_plan(request, log)
        log.evidence["replicas"] = replicas
        return self._outcome(outputs, f"scaled to {replicas} replicas", log)

    def _resources(self, request: ActionRequest, log: RunLog) -> str:
        limits, requests = _resources(request.params)
        outputs = self._run_plan(request, log)
        log.evidence["limits"], log.evidence["requests"] = limits, requests
        parts = [
            f"limits {_join(limits)}" if limits else "",
            f"requests {_join(requests)}" if requests else "",
        ]
        return self._outcome(outputs, "resources set: " + ", ".join(p for p in parts if p), log)

    def _diagnostics(self, request: ActionRequest, log: RunLog) -> str:
        describe, events = self._run_plan(request, log)
        log.evidence.pop("kubectl", None)  # the two outputs are kept whole below instead
        log.evidence["describe"] = bounded(mask_env_values(describe.stdout), DIAGNOSTICS_LIMIT)
        log.evidence["events"] = bounded(events.stdout, DIAGNOSTICS_LIMIT)
        event_lines = max(len([line for line in events.stdout.splitlines() if line.strip()]) - 1, 0)
        return f"captured kubectl describe of {self.target} and {event_lines} events in {self.namespace}"

    def _notify(self, request: ActionRequest, log: RunLog) -> str:
        return f"no change made to {self.target} in {self.namespace}: notify only"


NO_TARGET = (
    "no rollback target: give params.to_version (a known-good version) or params.revision "
    "(kubectl's own previous revision may be the known-bad one)"
)


def image_tag(image: str) -> str | None:
    """The tag of a container image reference (``repo/app:v1.2.0@sha256:…`` → ``v1.2.0``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def _revision(params: Mapping[str, Any]) -> int | None:
    value = params.get("revision")
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActionRefused(f"{ROLLBACK}: params.revision must be a whole number ≥ 1, got {value!r}")
    return value


def _resources(params: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Validated ``params.limits`` and ``params.requests`` ({"cpu": "500m", "memory": "512Mi"})."""
    found: dict[str, dict[str, str]] = {}
    for kind in ("limits", "requests"):
        given = params.get(kind)
        if given is None:
            found[kind] = {}
            continue
        if not isinstance(given, Mapping):
            raise ActionRefused(
                f"increase_resources: params.{kind} must be an object like {{'memory': '512Mi'}}"
            )
        values: dict[str, str] = {}
        for name, raw in given.items():
            if name not in RESOURCE_NAMES:
                raise ActionRefused(
                    f"increase_resources: params.{kind}.{name} is not one of {', '.join(RESOURCE_NAMES)}"
                )
            text = (
                str(raw).strip() if isinstance(raw, str | int | float) and not isinstance(raw, bool) else ""
            )
            quantity = parse_quantity(text)
            if quantity is None or quantity <= 0:
                raise ActionRefused(
                    f"increase_resources: params.{kind}.{name} is not a positive Kubernetes quantity: {raw!r}"
                )
            values[name] = text
        found[kind] = values
    limits, requests = found["limits"], found["requests"]
    if not limits and not requests:
        raise ActionRefused("increase_resources needs params.limits or params.requests (cpu, memory)")
    for name, request_text in requests.items():
        limit_text = limits.get(name)
        if limit_text is not None and parse_quantity(request_text) > parse_quantity(limit_text):  # type: ignore[operator]
            raise ActionRefused(
                f"increase_resources: the {name} request {request_text} is above its limit {limit_text}"
            )
    return limits, requests


def _join(values: Mapping[str, str]) -> str:
    return ",".join(f"{name}={values[name]}" for name in sorted(values))
