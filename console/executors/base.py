"""The executor interface: what the loop asks for (:class:`ActionRequest`), what happened
(:class:`ActionResult`), the :class:`Executor` protocol, and the human label of a result.

An executor never raises from ``run``: every failure is a ``failed`` result with one line saying why,
and an action its target cannot do is ``refused`` with one line saying why. Secrets used during a
run (tokens, signing keys) are masked out of everything the result records and everything logged.

Action names are plain strings here (``KNOWN_ACTIONS`` mirrors ``console.actions.ACTIONS``; a test
keeps the two in step) because this package may import only ``console.settings``.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from console.domain.text import one_line

logger = logging.getLogger("console.executors")

KNOWN_ACTIONS: tuple[str, ...] = (
    "rollback_deployment",
    "scale_deployment",
    "restart_pod",
    "increase_resources",
    "collect_diagnostics",
    "failover_database",
    "notify_only",
)

DONE = "done"
FAILED = "failed"
REFUSED = "refused"
STATUSES: tuple[str, ...] = (DONE, FAILED, REFUSED)

AUTO = "auto"
"""``approved_by`` of an action the policy ran without a human."""

MASK = "***"
DETAIL_LIMIT = 300
"""Longest one-line detail kept in a result (longer text is cut with an ellipsis)."""


# -- small pure helpers ---------------------------------------------------------------------------------


def now_text() -> str:
    """The current time as RFC 3339 UTC with milliseconds and a trailing Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


_SENSITIVE_QUERY = ("token", "secret", "key", "password", "passwd", "sig", "auth", "code")


def mask_url(url: str) -> str:
    """``url`` with a password in the user part and sensitive query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = [
            (k, MASK if any(word in k.lower() for word in _SENSITIVE_QUERY) else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
    """The version that ran before it (the rollback target when ``params`` name none)."""
    deployment_id: str | None = None
    execution_id: str | None = None
    approved_by: str = AUTO
    """Who approved (comma-separated for two approvers), or ``"auto"`` when the policy ran it."""

    @property
    def target_version(self) -> str | None:
        """Where a rollback goes: ``params.to_version`` (the analyzer sets it), else ``previous_version``."""
        to = self.params.get("to_version")
        if isinstance(to, str) and to.strip():
            return to.strip()
        return self.previous_version

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
        """True only when this executor changed the target itself: done, not simulated, not a dry
        run, not a hand-off (a webhook receiver that accepted the action has not carried it out)."""
        return self.status == DONE and not self.simulated and not self.dry_run and not self.handed_off

    @property
    def handed_off(self) -> bool:
        """Done by handing the action to another system (a webhook receiver accepted it)."""
        return self.status == DONE and not self.simulated and self.executor in HANDOFF_EXECUTORS

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

# action -> (what "done" reads as, the noun used for "failed"/"refused"/"dry run")
_WORDING: dict[str, tuple[str, str]] = {
    "rollback_deployment": ("rolled back", "rollback"),
    "scale_deployment": ("scaled", "scale"),
    "restart_pod": ("restarted", "restart"),
    "increase_resources": ("resources increased", "resource increase"),
    "collect_diagnostics": ("diagnostics collected", "diagnostics collection"),
    "failover_database": ("database failed over", "database failover"),
    "notify_only": ("notify only: nothing changed", "notification"),
}

HANDOFF_EXECUTORS = frozenset({"webhook"})
"""Executors that hand the action to another system: "done" means it was accepted, not carried out."""


def result_label(result: ActionResult) -> str:
    """The human label of a result, for pages and records.

    ``rolled back`` · ``rolled back (simulated)`` · ``rollback (server dry run)`` ·
    ``rollback failed: <reason>`` · ``rollback refused: <reason>`` · ``rollback sent: webhook answered
    202`` (a hand-off). A failed or refused action never reads as done.
    """
    done_text, noun = _WORDING.get(result.action, (f"{result.action} done", result.action))
    suffix = " (simulated)" if result.simulated else ""
    if result.status == DONE:
        if result.dry_run:
            return f"{noun} (server dry run){suffix}"
        if result.executor in HANDOFF_EXECUTORS and not result.simulated:
            code = (result.evidence or {}).get("status_code")
            answered = f": {result.executor} answered {code}" if code is not None else ""
            return f"{noun} sent{answered}"
        if result.action == "scale_deployment":
            replicas = (result.evidence or {}).get("replicas")
            if isinstance(replicas, int) and not isinstance(replicas, bool):
                done_text = f"scaled to {replicas} replica{'s' if replicas != 1 else ''}"
        return f"{done_text}{suffix}"
    if result.dry_run:
        suffix = f" (server dry run){suffix}"
    word = "failed" if result.status == FAILED else "refused"
    reason = result.detail or "no reason given"
    return f"{noun} {word}: {reason}{suffix}"


# -- the protocol and the shared run machinery ------------------------------------------------------------


@runtime_checkable
class Executor(Protocol):
    """Runs actions on one kind of target. ``run`` never raises."""

    name: str
    simulated: bool

    def supports(self, action: str) -> bool:
        """Whether this target can do ``action`` at all (``run`` may still refuse bad params)."""
        ...

    def describe(self, request: ActionRequest) -> str:
        """One line: what ``run`` would do for ``request`` (for the approval card); touches nothing."""
        ...

    def run(self, request: ActionRequest) -> ActionResult: ...


class ActionFailed(Exception):
    """Raised inside an executor: the action was tried and did not work (``str`` is the one-line reason)."""


class ActionRefused(Exception):
    """Raised inside an executor: the action is not attempted (``str`` is the one-line reason)."""


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
"""Does one action; returns the one-line detail of success, raises ActionFailed/ActionRefused."""


class BaseExecutor:
    """The run/describe machinery every executor shares: refusals, timing, masking, never raising.

    Subclasses set ``name`` and ``simulated`` and provide ``_handlers()`` (action -> handler),
    ``_refusals()`` (known action this target cannot do -> why) and ``_describe_action``.
    """

    name: str = ""
    simulated: bool = False

    def _handlers(self) -> Mapping[str, Handler]:
        raise NotImplementedError

    def _refusals(self) -> Mapping[str, str]:
        return {}

    def _describe_action(self, request: ActionRequest) -> str:
        raise NotImplementedError

    def supports(self, action: str) -> bool:
        return action in self._handlers()

    def _refusal(self, request: ActionRequest) -> str | None:
        """Why the action is refused before anything runs, or None when a handler exists."""
        if request.action not in KNOWN_ACTIONS:
            return f"unknown action {request.action!r} (one of {', '.join(KNOWN_ACTIONS)})"
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
        except ActionFailed as exc:
            status, detail = FAILED, str(exc)
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
