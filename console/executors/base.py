"""The executor interface: what the loop asks for (:class:`ActionRequest`), what happened
(:class:`ActionResult`), what the target says runs now (:class:`ServiceState`, an executor's
``probe``), the :class:`Executor` protocol, and the human label of a result.

Four results, never two: ``done`` (the change happened, or a read-only action did its reading),
``failed`` (it was tried and did not happen: the target said so, or the call never reached it),
``refused`` (not attempted: the target cannot do it, the params are unusable, or the service no longer
runs the version the request was about) and ``unknown`` (the call may or may not have acted: a
timeout, a lost connection, a crash during the call). An ``unknown`` result is reconciled by reading
the target's actual state (:meth:`BaseExecutor.reconcile`: bounded retries with backoff; a target
that accepts idempotency keys gets the same call again with the same key, so a retry never acts
twice); it is never turned into ``failed`` when the change happened.

An executor never raises from ``run``: every failure is a result with one line saying why. Secrets
used during a run (tokens, signing keys) are masked out of everything the result records and
everything logged.

The action names and their words come from the vocabulary in :mod:`console.domain.actions` (this
package sits above ``domain`` in the layers of pyproject.toml); an executor declares which of those
actions its target can do through its handlers (:meth:`Executor.supports`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from console.domain.actions import (
    ACTION_NAMES,
    INCREASE_RESOURCES,
    RESTART,
    ROLLBACK,
    SCALE,
    changes_service,
    wording,
)
from console.domain.models import now_text
from console.domain.text import one_line

logger = logging.getLogger("console.executors")

DONE = "done"
FAILED = "failed"
REFUSED = "refused"
UNKNOWN = "unknown"
STATUSES: tuple[str, ...] = (DONE, FAILED, REFUSED, UNKNOWN)

AUTO = "auto"
"""``approved_by`` of an action the policy ran without a human."""

MASK = "***"
CRASH_LOOP_RESTARTS = 2
"""Unexpected restarts since the last switch from which a service counts as crash-looping."""


# -- small pure helpers ---------------------------------------------------------------------------------


def last_line(text: str) -> str:
    """The last non-empty line of a command's output (where kubectl puts its error)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def bounded(text: str, limit: int) -> str:
    """The end of ``text`` when it is longer than ``limit`` (the end of an output is the useful part)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def bounded_json(value: Any, limit: int = 4000) -> Any:
    """``value`` itself when its JSON fits in ``limit`` characters, else a marked excerpt."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= limit:
        return value
    return {"truncated": True, "excerpt": text[: limit - 1] + "…"}


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret string replaced by ``***`` (in nested dicts and lists too)."""
    live = [s for s in secrets if s]
    if not live:
        return value
    if isinstance(value, str):
        for secret in sorted(live, key=len, reverse=True):
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {scrub(k, live): scrub(v, live) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, live) for v in value)
    return value


def _optional_text(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{where}.{key} must be a string or null")
    return str(value)


def idempotency_key(
    execution_id: str | None, deployment_id: str | None, service: str, action: str, attempt: int = 1
) -> str | None:
    """The key of one attempt of one action of one execution: the same on every retry of that
    attempt (a retried delivery, a re-run step after a crash), so a target that keeps keys acts once.
    None when there is nothing stable to derive it from."""
    if not (execution_id or deployment_id):
        return None
    basis = json.dumps([execution_id, deployment_id, service, action, attempt], default=str)
    return "devops-loop-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


# -- what runs now ---------------------------------------------------------------------------------------


class ProbeError(Exception):
    """The target's state could not be read (``str`` is the one-line reason, never a secret)."""


@dataclass(frozen=True)
class ServiceState:
    """What a service runs now, as its target says (an executor's ``probe``): the version, whether it
    is ready, unexpected restarts since the last switch, whether a switch is under way, and which
    switch put the version there (the target's own id and time of it)."""

    version: str | None
    ready: bool | None = None
    restarts: int | None = None
    deploying: bool = False
    previous_version: str | None = None
    deployment_id: str | None = None
    switched_at: str | None = None
    started_at: str | None = None
    """When the running instance started (changes on a restart)."""
    revision: str | None = None
    replicas: int | None = None
    observed_at: str = ""
    source: str = ""
    """What was read (``GET http://…/status``, ``kubectl get deployment/api -n shop``)."""

    @property
    def crash_looping(self) -> bool:
        """Restarting on its own: ``CRASH_LOOP_RESTARTS`` or more unexpected restarts since the switch."""
        return self.restarts is not None and self.restarts >= CRASH_LOOP_RESTARTS

    @property
    def healthy(self) -> bool | None:
        """Ready and not crash-looping (None when readiness is not known)."""
        if self.ready is None:
            return None
        return self.ready and not self.crash_looping and not self.deploying

    @property
    def text(self) -> str:
        """``v1.2.0-leak · ready · 0 restarts`` (what the console shows of it)."""
        parts = [self.version or "unknown version"]
        if self.deploying:
            parts.append("a switch is under way")
        if self.ready is not None:
            parts.append("ready" if self.ready else "not ready")
        if self.restarts is not None:
            parts.append(f"{self.restarts} crash restart{'s' if self.restarts != 1 else ''}")
        if self.replicas is not None:
            parts.append(f"{self.replicas} replica{'s' if self.replicas != 1 else ''}")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ready": self.ready,
            "restarts": self.restarts,
            "deploying": self.deploying,
            "previous_version": self.previous_version,
            "deployment_id": self.deployment_id,
            "switched_at": self.switched_at,
            "started_at": self.started_at,
            "revision": self.revision,
            "replicas": self.replicas,
            "observed_at": self.observed_at,
            "source": self.source,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> ServiceState | None:
        """The state a ``to_dict`` wrote (None for anything else)."""
        if not isinstance(doc, Mapping) or "version" not in doc:
            return None

        def text(key: str) -> str | None:
            value = doc.get(key)
            return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

        restarts = doc.get("restarts")
        replicas = doc.get("replicas")
        ready = doc.get("ready")
        return cls(
            version=text("version"),
            ready=ready if isinstance(ready, bool) else None,
            restarts=restarts if isinstance(restarts, int) and not isinstance(restarts, bool) else None,
            deploying=doc.get("deploying") is True,
            previous_version=text("previous_version"),
            deployment_id=text("deployment_id"),
            switched_at=text("switched_at"),
            started_at=text("started_at"),
            revision=text("revision"),
            replicas=replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None,
            observed_at=str(doc.get("observed_at") or ""),
            source=str(doc.get("source") or ""),
        )


def effect_seen(request: ActionRequest, before: ServiceState | None, after: ServiceState) -> bool:
    """Whether ``after`` (the target's state now) shows the change ``request`` asked for: the target
    version running for a rollback (no switch under way), a new instance for a restart, the replica
    count for a scale, a new revision for a resource change. False whenever it cannot be told."""
    if after.deploying:
        return False
    if request.action == ROLLBACK:
        return request.target_version is not None and after.version == request.target_version
    if before is None:
        return False
    if request.action == RESTART:
        return bool(after.started_at and before.started_at and after.started_at != before.started_at)
    if request.action == SCALE:
        wanted = request.params.get("replicas")
        return after.replicas is not None and str(after.replicas) == str(wanted)
    if request.action == INCREASE_RESOURCES:
        return bool(after.revision and before.revision and after.revision != before.revision)
    return False


# -- request and result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionRequest:
    """One action the loop wants run on one service."""

    action: str
    service: str
    params: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    """The version the deployment under judgement brought."""
    previous_version: str | None = None
    """The version that ran before it, as announced: context only, never a rollback target."""
    deployment_id: str | None = None
    execution_id: str | None = None
    approved_by: str = AUTO
    """Who approved (comma-separated for two approvers), or ``"auto"`` when the policy ran it."""
    expected_version: str | None = None
    """The version the decision was about: a target that supports compare-and-swap acts only while
    this version runs (None: no condition)."""
    attempt: int = 1
    """Which attempt of this action of this execution (part of the idempotency key)."""

    @property
    def target_version(self) -> str | None:
        """Where a rollback goes: ``params.to_version``, which the loop sets from the revision
        history or the approver's choice. Never the announced previous version (a hint from outside)."""
        to = self.params.get("to_version")
        if isinstance(to, str) and to.strip():
            return to.strip()
        return None

    @property
    def idempotency_key(self) -> str | None:
        return idempotency_key(self.execution_id, self.deployment_id, self.service, self.action, self.attempt)

    @property
    def actor(self) -> str:
        """Who the change is made in the name of, as recorded by the target."""
        return "devops-loop" if self.approved_by == AUTO else f"devops-loop (approved by {self.approved_by})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "service": self.service,
            "params": dict(self.params),
            "version": self.version,
            "previous_version": self.previous_version,
            "deployment_id": self.deployment_id,
            "execution_id": self.execution_id,
            "approved_by": self.approved_by,
            "expected_version": self.expected_version,
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ActionRequest:
        """A request from JSON; ``ValueError`` with one line naming the field otherwise."""
        if not isinstance(doc, Mapping):
            raise ValueError("action request must be an object")
        action = doc.get("action")
        if not isinstance(action, str) or not action.strip():
            raise ValueError("action request needs 'action' (a non-empty string)")
        service = doc.get("service")
        if not isinstance(service, str) or not service.strip():
            raise ValueError("action request needs 'service' (a non-empty string)")
        params = doc.get("params")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError("action request 'params' must be an object")
        attempt = doc.get("attempt", 1)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError("action request 'attempt' must be a whole number ≥ 1")
        approved_by = _optional_text(doc, "approved_by", "action request") or AUTO
        return cls(
            action=action.strip(),
            service=service.strip(),
            params=dict(params),
            version=_optional_text(doc, "version", "action request"),
            previous_version=_optional_text(doc, "previous_version", "action request"),
            deployment_id=_optional_text(doc, "deployment_id", "action request"),
            execution_id=_optional_text(doc, "execution_id", "action request"),
            approved_by=approved_by,
            expected_version=_optional_text(doc, "expected_version", "action request"),
            attempt=attempt,
        )


@dataclass(frozen=True)
class ActionResult:
    """What one executor did with one request.

    ``commands`` is what was run, one line each: a command line or an HTTP request, secrets masked.
    ``dry_run`` marks a server-side dry run: the status is ``done`` when the server accepted the change,
    but nothing changed (see :attr:`changed`) and the label says "(server dry run)".
    """

    action: str
    status: str
    simulated: bool
    executor: str
    detail: str
    commands: tuple[str, ...] = ()
    started_at: str = ""
    finished_at: str = ""
    evidence: dict[str, Any] | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"action result status must be one of {', '.join(STATUSES)}, got {self.status!r}"
            )

    @property
    def changed(self) -> bool:
        """True only when the change happened on the target: done, not simulated, not a dry run, an
        action that changes the service."""
        return (
            self.status == DONE and not self.simulated and not self.dry_run and changes_service(self.action)
        )

    @property
    def reconciled(self) -> dict[str, Any] | None:
        """How an ``unknown`` result was settled by reading the target (None if it never was)."""
        found = (self.evidence or {}).get("reconciled")
        return found if isinstance(found, dict) else None

    @property
    def label(self) -> str:
        return result_label(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``label`` is included for readers that only show it (it is ignored on the way back)."""
        return {
            "action": self.action,
            "status": self.status,
            "simulated": self.simulated,
            "dry_run": self.dry_run,
            "executor": self.executor,
            "detail": self.detail,
            "label": self.label,
            "commands": list(self.commands),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ActionResult:
        """A result from JSON; ``ValueError`` with one line naming the field otherwise."""
        if not isinstance(doc, Mapping):
            raise ValueError("action result must be an object")
        for key in ("action", "status", "executor", "detail"):
            if not isinstance(doc.get(key), str):
                raise ValueError(f"action result needs {key!r} (a string)")
        for key in ("simulated", "dry_run"):
            if key in doc and not isinstance(doc[key], bool):
                raise ValueError(f"action result {key!r} must be true or false")
        commands = doc.get("commands") or []
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise ValueError("action result 'commands' must be a list of strings")
        evidence = doc.get("evidence")
        if evidence is not None and not isinstance(evidence, Mapping):
            raise ValueError("action result 'evidence' must be an object or null")
        return cls(
            action=doc["action"],
            status=doc["status"],
            simulated=bool(doc.get("simulated", False)),
            executor=doc["executor"],
            detail=doc["detail"],
            commands=tuple(commands),
            started_at=str(doc.get("started_at") or ""),
            finished_at=str(doc.get("finished_at") or ""),
            evidence=dict(evidence) if evidence is not None else None,
            dry_run=bool(doc.get("dry_run", False)),
        )


# -- labels ---------------------------------------------------------------------------------------------


def result_label(result: ActionResult) -> str:
    """The human label of a result, for pages and records.

    ``rolled back`` · ``rolled back (simulated)`` · ``rollback (server dry run)`` ·
    ``rollback failed: <reason>`` · ``rollback refused: <reason>`` · ``rollback result unknown:
    <reason>`` · ``notification sent: webhook answered 202``. Only a ``done`` result reads as done.
    """
    done_text, noun = wording(result.action)
    suffix = " (simulated)" if result.simulated else ""
    if result.status == DONE:
        if result.dry_run:
            return f"{noun} (server dry run){suffix}"
        code = (result.evidence or {}).get("status_code")
        if result.executor == "webhook" and not result.simulated and not changes_service(result.action):
            answered = f": webhook answered {code}" if code is not None else ""
            return f"{noun} sent{answered}"
        if result.action == SCALE:
            replicas = (result.evidence or {}).get("replicas")
            if isinstance(replicas, int) and not isinstance(replicas, bool):
                done_text = f"scaled to {replicas} replica{'s' if replicas != 1 else ''}"
        return f"{done_text}{suffix}"
    if result.dry_run:
        suffix = f" (server dry run){suffix}"
    word = {FAILED: "failed", REFUSED: "refused", UNKNOWN: "result unknown"}[result.status]
    reason = result.detail or "no reason given"
    return f"{noun} {word}: {reason}{suffix}"


# -- the protocol and the shared run machinery ------------------------------------------------------------


@runtime_checkable
class Executor(Protocol):
    """Runs actions on one kind of target. ``run`` never raises."""

    name: str
    simulated: bool
    idempotent: bool
    """The target accepts an idempotency key: the same call sent again never acts twice."""

    def supports(self, action: str) -> bool:
        """Whether this target can do ``action`` at all (``run`` may still refuse bad params)."""
        ...

    def describe(self, request: ActionRequest) -> str:
        """One line: what ``run`` would do for ``request`` (for the approval card); touches nothing."""
        ...

    def can_probe(self) -> bool:
        """Whether :meth:`probe` can read the service's state (preconditions and reconciliation)."""
        ...

    def probe(self, service: str) -> ServiceState:
        """The service's current state, read from the target; :class:`ProbeError` (one line) when it
        cannot be read. Touches nothing."""
        ...

    def run(self, request: ActionRequest) -> ActionResult: ...

    def reconcile(
        self,
        request: ActionRequest,
        result: ActionResult,
        *,
        before: ServiceState | None = None,
        attempts: int = 4,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ActionResult: ...


class ExecutorConfigError(ValueError):
    """An executor section is not usable. ``problems`` holds one line per problem, each naming the
    key's path (:class:`console.domain.config_reader.ConfigReader`); ``str`` joins them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ActionFailed(Exception):
    """Raised inside an executor: the action was tried and did not happen (``str`` is the reason)."""


class ActionRefused(Exception):
    """Raised inside an executor: the action is not attempted (``str`` is the one-line reason)."""

    def __init__(self, message: str, *, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = dict(evidence or {})


class ActionUnknown(Exception):
    """Raised inside an executor: the call may have acted or not (a timeout or a lost connection
    after the request was sent); ``str`` is the one-line reason."""


@dataclass
class RunLog:
    """What one run did, collected by the handlers: commands (masked), evidence, secrets to scrub."""

    commands: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    dry_run: bool = False

    def command(self, text: str) -> None:
        masked = scrub(text, self.secrets)
        self.commands.append(masked)
        logger.debug("executor command: %s", masked)


Handler = Callable[[ActionRequest, RunLog], str]
"""Does one action; returns the one-line detail of success, raises ActionFailed, ActionRefused or
ActionUnknown."""


class BaseExecutor:
    """The run/describe/reconcile machinery every executor shares: refusals, timing, masking, never
    raising.

    Subclasses set ``name``, ``simulated`` and ``idempotent`` and provide ``_handlers()`` (action ->
    handler), ``_refusals()`` (known action this target cannot do -> why), ``_describe_action`` and,
    when the target's state can be read, ``_probe``.
    """

    name: str = ""
    simulated: bool = False
    idempotent: bool = False

    def _handlers(self) -> Mapping[str, Handler]:
        raise NotImplementedError

    def _refusals(self) -> Mapping[str, str]:
        return {}

    def _describe_action(self, request: ActionRequest) -> str:
        raise NotImplementedError

    def _probe(self, service: str) -> ServiceState | None:
        """The state read from the target, or None when this executor cannot read it."""
        return None

    def supports(self, action: str) -> bool:
        return action in self._handlers()

    def can_probe(self) -> bool:
        return type(self)._probe is not BaseExecutor._probe

    def probe(self, service: str) -> ServiceState:
        try:
            state = self._probe(service)
        except ProbeError:
            raise
        except (ActionFailed, ActionRefused, ActionUnknown) as exc:
            raise ProbeError(one_line(exc)) from None
        except Exception as exc:
            raise ProbeError(one_line(f"the {self.name} executor broke reading the state: {exc}")) from None
        if state is None:
            raise ProbeError(f"the {self.name} executor cannot read {service}'s state")
        return state

    def _refusal(self, request: ActionRequest) -> str | None:
        """Why the action is refused before anything runs, or None when a handler exists."""
        if request.action not in ACTION_NAMES:
            return f"unknown action {request.action!r} (one of {', '.join(ACTION_NAMES)})"
        if request.action in self._handlers():
            return None
        why = self._refusals().get(request.action, f"the {self.name} executor does not do it")
        return f"{request.service or 'the service'} cannot {request.action}: {why}"

    def describe(self, request: ActionRequest) -> str:
        refusal = self._refusal(request)
        if refusal is not None:
            return f"refused: {refusal}"
        try:
            return self._describe_action(request)
        except ActionRefused as exc:
            return f"refused: {one_line(exc)}"
        except Exception as exc:  # a description must never break a page
            return f"cannot describe: {one_line(f'{type(exc).__name__}: {exc}')}"

    def run(self, request: ActionRequest) -> ActionResult:
        started = now_text()
        log = RunLog()
        action = getattr(request, "action", "?")
        try:
            if not isinstance(request, ActionRequest):
                raise ActionFailed(f"not an ActionRequest: {type(request).__name__}")
            refusal = self._refusal(request)
            if refusal is not None:
                raise ActionRefused(refusal)
            detail = self._handlers()[request.action](request, log)
            status = DONE
        except ActionRefused as exc:
            status, detail = REFUSED, str(exc)
            log.evidence.update(exc.evidence)
        except ActionFailed as exc:
            status, detail = FAILED, str(exc)
        except ActionUnknown as exc:
            status, detail = UNKNOWN, str(exc)
        except Exception as exc:
            status = FAILED
            detail = f"the {self.name} executor broke: {type(exc).__name__}: {exc}"
            logger.debug("executor %s raised: %s", self.name, scrub(traceback.format_exc(), log.secrets))
        result = ActionResult(
            action=str(action),
            status=status,
            simulated=self.simulated,
            executor=self.name,
            detail=scrub(one_line(detail), log.secrets),
            commands=tuple(scrub(c, log.secrets) for c in log.commands),
            started_at=started,
            finished_at=now_text(),
            evidence=scrub(log.evidence, log.secrets) or None,
            dry_run=log.dry_run,
        )
        service = getattr(request, "service", "?")
        log_level = logging.INFO if status == DONE else logging.WARNING
        logger.log(log_level, "executor %s: %s for %s: %s", self.name, action, service, result.label)
        return result

    def reconcile(
        self,
        request: ActionRequest,
        result: ActionResult,
        *,
        before: ServiceState | None = None,
        attempts: int = 4,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ActionResult:
        """Settle an ``unknown`` result by reading what really happened, at most ``attempts`` times
        with exponential backoff from ``backoff_s``: a target that keeps idempotency keys gets the
        same call again with the same key (it answers with what the first one did, or does it once
        now); any other target is read through :meth:`probe` until the change shows. A result that
        is not ``unknown`` is returned as it is; one that stays unknown says what was read."""
        if result.status != UNKNOWN:
            return result
        reads: list[str] = []
        for attempt in range(1, max(1, attempts) + 1):
            if attempt > 1:
                sleep(backoff_s * 2 ** (attempt - 2))
            if self.idempotent:
                again = self.run(request)
                reads.append(f"call repeated with the same key: {again.status}")
                if again.status != UNKNOWN:
                    return _settled(again, result, "the target answered the repeated call", attempt)
                continue
            try:
                state = self.probe(request.service)
            except ProbeError as exc:
                reads.append(f"state unreadable: {exc}")
                continue
            reads.append(f"state: {state.text}")
            if effect_seen(request, before, state):
                seen = replace(
                    result,
                    status=DONE,
                    detail=one_line(f"{request.service} now runs {state.text}: {result.detail}"),
                    evidence={**(result.evidence or {}), "status": state.to_dict()},
                )
                return _settled(seen, result, f"the service's state shows it ({state.text})", attempt)
        evidence = {
            **(result.evidence or {}),
            "reconcile": {"attempts": max(1, attempts), "reads": reads[-4:]},
        }
        return replace(result, evidence=evidence, finished_at=now_text())


def _settled(now: ActionResult, was: ActionResult, how: str, attempts: int) -> ActionResult:
    """``now`` marked as the reconciliation of ``was`` (an unknown result), and by what."""
    note = {"from": UNKNOWN, "how": how, "attempts": attempts, "at": now_text(), "first_detail": was.detail}
    evidence = {**(was.evidence or {}), **(now.evidence or {}), "reconciled": note}
    return replace(
        now,
        started_at=was.started_at or now.started_at,
        commands=tuple(was.commands) + tuple(c for c in now.commands if c not in was.commands),
        evidence=evidence,
    )
