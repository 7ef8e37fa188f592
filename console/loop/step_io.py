"""The typed inputs and outputs of the loop's steps.

Each step (:mod:`console.loop.steps`) takes one JSON object and returns one (Kestra hands it a file,
the embedded engine a dict built by :mod:`console.loop.wiring`). Here is what those objects hold: an
``*Input`` per step, whose :meth:`from_dict` checks the JSON once and raises :class:`StepError` with a
one-line message naming what is wrong, and an ``*Output`` per step, whose :meth:`to_dict` is the JSON
the step returns. A step reads attributes of its input, never ``data.get("...")``.

The documents inside them stay JSON objects where another module owns their shape: a snapshot
(:mod:`console.domain.snapshot`), a plan (:mod:`console.loop.policy`), an executed action
(:mod:`console.executors`), a measurement (:mod:`console.loop.outcome`). The decision that
``summarize`` and ``decide`` read is a :class:`~console.domain.models.Decision`.

``tests/loop/test_step_io.py`` checks these types against the wiring table: every key the wiring
gives a step is a field of its input, and every output the wiring reads is a field of the output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from console.domain.models import Decision

Doc = dict[str, Any]
"""A JSON object whose shape another module owns."""


class StepError(ValueError):
    """A step's input is not usable; the message is one line naming what is wrong."""


# -- reading JSON --------------------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A scalar as trimmed text; None for null, an empty string, a bool, an object or a list."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    out = str(value).strip()
    return out or None


def json_object(data: Any, step: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise StepError(f"{step}: input must be a JSON object")
    return data


def required(data: Mapping[str, Any], key: str, step: str) -> Any:
    if data.get(key) is None:
        raise StepError(f"{step}: input needs {key!r}")
    return data[key]


def an_object(value: Any, what: str) -> Doc:
    """``value`` when it is a JSON object, else StepError."""
    if not isinstance(value, dict):
        raise StepError(f"{what} must be an object")
    return value


def object_or_null(value: Any, what: str) -> Doc | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StepError(f"{what} must be an object or null")
    return value


def objects(value: Any, what: str) -> list[Doc]:
    """A list of JSON objects (null counts as empty), else StepError."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise StepError(f"{what} must be a list of objects")
    return value


def plan_doc(data: Mapping[str, Any], step: str) -> Doc:
    """The ``plan`` of a step's input: an object whose action lists are lists of objects."""
    plan = an_object(required(data, "plan", step), f"{step}: 'plan'")
    for key in ("auto", "approval"):
        objects(plan.get(key), f"{step}: plan.{key}")
    return plan


def decision_of(doc: Any, step: str) -> Decision:
    """Decision.from_dict with a bounded one-line StepError for anything it cannot read."""
    try:
        decision = Decision.from_dict(an_object(doc, f"{step}: 'decision'"))
        json.dumps(decision.to_dict())  # fields of the wrong type (a list as a metric name) fail here
        return decision
    except StepError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 120 else detail[:119] + "…"
        raise StepError(f"{step}: decision is not understood ({type(exc).__name__}: {detail})") from None


def watch_doc(data: Mapping[str, Any], step: str) -> Doc:
    """What the previous look gave this one (``watch``: a JSON string or an object; {} at first)."""
    given = data.get("watch")
    if given is None or given == "":
        return {}
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except ValueError:
            raise StepError(f"{step}: 'watch' is not the JSON a previous look returned") from None
    if not isinstance(given, dict):
        raise StepError(f"{step}: 'watch' must be an object")
    return given


def live_deployment(data: Mapping[str, Any]) -> Doc | None:
    """The deployment a live run is about: ``data["deployment"]`` (the deployer's record and
    announcement spellings accepted: ``deployment_id``/``id``, ``by``/``deployed_by``,
    ``at``/``deployed_at``), or the flat inputs naming a ``service``; None when neither is there.
    Empty strings (Kestra's absent inputs) count as absent."""
    given = data.get("deployment")
    source: Mapping[str, Any] = given if isinstance(given, Mapping) else data
    if not isinstance(given, Mapping) and not text(data.get("service")):
        return None

    def pick(*keys: str) -> str | None:
        return next((text(source.get(k)) for k in keys if text(source.get(k))), None)

    return {
        "id": pick("id", "deployment_id"),
        "service": pick("service"),
        "version": pick("version"),
        "previous_version": pick("previous_version"),
        "environment": pick("environment"),
        "deployed_at": pick("deployed_at", "at"),
        "deployed_by": pick("deployed_by", "by"),
    }


def subject(data: Mapping[str, Any]) -> tuple[Doc | None, str | None]:
    """(deployment, scenario id) the actions are about, from ``deployment``/``scenario`` or a
    ``snapshot`` in the input."""
    snapshot = data.get("snapshot") if isinstance(data.get("snapshot"), Mapping) else {}
    deployment = data.get("deployment") if isinstance(data.get("deployment"), Mapping) else None
    deployment = deployment or (
        snapshot.get("deployment") if isinstance(snapshot.get("deployment"), Mapping) else None
    )
    scenario = data.get("scenario") if data.get("scenario") is not None else snapshot.get("scenario")
    if isinstance(scenario, Mapping):
        scenario = scenario.get("id")
    return (dict(deployment) if deployment else None), text(scenario)


def _watched_window(data: Mapping[str, Any]) -> Doc | None:
    """collect's ``verification`` when the run watched a live deployment; None otherwise."""
    given = data.get("verification")
    return dict(given) if isinstance(given, Mapping) else None


# -- the looks of a step that waits ------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """Whether a looking step (collect, verify) is done, and if not, when to look again: ``wait``
    (ISO-8601 duration, for a Kestra Pause), ``until`` (RFC 3339), ``watch`` (the progress for the
    next look, a JSON string: Kestra merges a string whole), ``waiting_for`` (a few words),
    ``urgent`` (the next look may decide). Every key is always present: Kestra reads them with strict
    Pebble and merges a looping task's outputs key by key, a null never replacing a value."""

    KEYS: ClassVar[tuple[str, ...]] = ("done", "wait", "until", "watch", "waiting_for", "urgent")

    done: bool = True
    wait: str | None = None
    until: str | None = None
    watch: str | None = None
    waiting_for: str | None = None
    urgent: bool = False

    def to_dict(self) -> Doc:
        return {key: getattr(self, key) for key in self.KEYS}


DONE = Look()


def _omitting_none(out: Doc, keys: tuple[str, ...]) -> Doc:
    return {k: v for k, v in out.items() if not (k in keys and v is None)}


# -- inputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectInput:
    """A run's launch: a ``scenario`` id, a ``snapshot`` given as evidence, a live ``deployment``
    (an object, or Kestra's flat inputs), or an incident (``incident`` or Alertmanager's body,
    read from ``launch`` by :func:`console.loop.incidents.incident_input`); ``watch`` is the
    previous look's."""

    launch: Mapping[str, Any]
    snapshot: Any = None  # checked by collect (console.domain.snapshot.validate_document)
    scenario: str | None = None
    deployment: Doc | None = None
    incident: bool = False
    watch: Doc = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "collect")
        if data.get("snapshot") is not None:
            return cls(data, snapshot=data["snapshot"])
        if data.get("scenario") is not None:
            return cls(data, scenario=str(data["scenario"]))
        watch = watch_doc(data, "collect")
        if data.get("incident") is not None or data.get("alertmanager") is not None:
            return cls(data, incident=True, watch=watch)
        deployment = live_deployment(data)
        if deployment is None:
            raise StepError(
                "collect: input needs 'scenario', 'snapshot', 'deployment', 'service' or 'incident'"
            )
        return cls(data, deployment=deployment, watch=watch)


@dataclass(frozen=True)
class AnalyzeInput:
    snapshot: Any
    verification: Doc | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "analyze")
        return cls(required(data, "snapshot", "analyze"), _watched_window(data))


@dataclass(frozen=True)
class SummarizeInput:
    snapshot: Any
    decision: Decision

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "summarize")
        snapshot = required(data, "snapshot", "summarize")
        return cls(snapshot, decision_of(required(data, "decision", "summarize"), "summarize"))


@dataclass(frozen=True)
class DecideInput:
    """The decision; for an incident run the ``incident`` (its severity routes the plan); for a
    watched live deployment the embedded engine adds the service's ``revisions`` and the
    ``deployment`` (the plan's rollback target comes from them)."""

    decision: Decision
    incident: Doc | None = None
    revisions: list[Any] | None = None
    deployment: Doc | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "decide")
        decision = decision_of(required(data, "decision", "decide"), "decide")
        incident = data.get("incident")
        if incident is not None and not isinstance(incident, dict):
            raise StepError("decide: 'incident' must be an object")
        history = data.get("revisions")
        deployment = data.get("deployment")
        return cls(
            decision,
            incident,
            history if isinstance(history, list) else None,
            deployment if isinstance(deployment, dict) else None,
        )


@dataclass(frozen=True)
class ExecuteInput:
    """The plan and its verdict, the approval's answer (null: none was needed or given), what the
    actions are about (``deployment``/``scenario``, or a ``snapshot`` holding them) and collect's
    ``verification`` (present only for a live deployment the run watched: only then is it acted on
    for real)."""

    plan: Doc
    verdict: str | None = None
    approval: Doc | None = None
    deployment: Doc | None = None
    scenario: str | None = None
    verification: Doc | None = None
    execution_id: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "execute")
        plan = plan_doc(data, "execute")
        approval = object_or_null(data.get("approval"), "execute: 'approval'")
        deployment, scenario = subject(data)
        verdict = data.get("verdict") or plan.get("verdict")
        return cls(
            plan,
            text(verdict),
            approval,
            deployment,
            scenario,
            _watched_window(data),
            text(data.get("execution_id")),
        )

    @property
    def watched(self) -> bool:
        return self.verification is not None


@dataclass(frozen=True)
class VerifyInput:
    """What the actions were about, execute's ``executed`` list, collect's ``verification`` (a
    watched live deployment) and the previous look's ``watch``."""

    deployment: Doc
    scenario: str | None = None
    verification: Doc | None = None
    executed: list[Doc] = field(default_factory=list)
    watch: Doc = field(default_factory=dict)
    deployment_status: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "verify")
        deployment, scenario = subject(data)
        if deployment is None:
            raise StepError("verify: input needs 'snapshot' or 'deployment'")
        executed = objects(data.get("executed"), "verify: 'executed'")
        verification = _watched_window(data)
        watch = watch_doc(data, "verify") if verification is not None and not scenario else {}
        return cls(deployment, scenario, verification, executed, watch, text(data.get("deployment_status")))


@dataclass(frozen=True)
class RecordInput:
    snapshot: Doc
    decision: Doc
    plan: Doc
    execution_id: Any = None
    approval: Doc | None = None
    executed: list[Doc] = field(default_factory=list)
    deployment_status: str | None = None
    measured: Doc | None = None
    incident: Doc | None = None
    routing: Doc | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        data = json_object(data, "record")
        snapshot = an_object(required(data, "snapshot", "record"), "record: 'snapshot'")
        decision = an_object(required(data, "decision", "record"), "record: 'decision'")
        plan = plan_doc(data, "record")
        approval = object_or_null(data.get("approval"), "record: 'approval'")
        executed = objects(data.get("executed"), "record: 'executed'")
        measured = object_or_null(data.get("measured"), "record: 'measured'")
        if measured and isinstance(measured.get("actions"), list):  # verify reconciled what was unknown
            executed = objects(measured["actions"], "record: 'measured.actions'")
        incident = object_or_null(data.get("incident"), "record: 'incident'")
        routing = object_or_null(data.get("routing"), "record: 'routing'") if incident else None
        return cls(
            snapshot,
            decision,
            plan,
            data.get("execution_id"),
            approval,
            executed,
            text(data.get("deployment_status")),
            measured,
            incident,
            routing,
        )


# -- outputs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectOutput:
    """The run's snapshot document, how a watched window ended (``verification``; null for a
    scenario or a snapshot given: nothing was watched), for an incident run the ``incident`` as
    checked, and the look. While the look is not done every final output is null."""

    OMITTED_WHEN_NULL: ClassVar[tuple[str, ...]] = ("incident",)

    snapshot: Doc | None = None
    verification: Doc | None = None
    incident: Doc | None = None
    look: Look = DONE

    def to_dict(self) -> Doc:
        out = {"snapshot": self.snapshot, "verification": self.verification, "incident": self.incident}
        return {**_omitting_none(out, self.OMITTED_WHEN_NULL), **self.look.to_dict()}


@dataclass(frozen=True)
class AnalyzeOutput:
    decision: Decision

    def to_dict(self) -> Doc:
        return {"decision": self.decision.to_dict()}


@dataclass(frozen=True)
class SummarizeOutput:
    decision: Decision

    def to_dict(self) -> Doc:
        return {"decision": self.decision.to_dict()}


@dataclass(frozen=True)
class DecideOutput:
    """The plan (auto and approval actions, the metrics to watch after them, the rollback's target),
    the decision's verdict, severity and confidence, and for an incident run how its severity routed
    the plan."""

    OMITTED_WHEN_NULL: ClassVar[tuple[str, ...]] = ("routing",)

    plan: Doc
    verdict: str
    severity: str
    confidence: float
    routing: Doc | None = None

    def to_dict(self) -> Doc:
        out = {
            "plan": self.plan,
            "verdict": self.verdict,
            "severity": self.severity,
            "confidence": self.confidence,
            "routing": self.routing,
        }
        return _omitting_none(out, self.OMITTED_WHEN_NULL)


@dataclass(frozen=True)
class ExecuteOutput:
    executed: list[Doc]
    skipped: list[Doc]
    deployment_status: str
    simulated: bool
    superseded: Doc | None = None

    def to_dict(self) -> Doc:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class VerifyOutput:
    """The measured outcome (null while the look is not done)."""

    measured: Doc | None = None
    look: Look = DONE

    def to_dict(self) -> Doc:
        return {"measured": self.measured, **self.look.to_dict()}


@dataclass(frozen=True)
class RecordOutput:
    """The outcome record kept for the Learning page and the training export."""

    outcome: Doc

    def to_dict(self) -> Doc:
        return {"outcome": self.outcome}


STEP_IO: dict[str, tuple[type, type]] = {
    "collect": (CollectInput, CollectOutput),
    "analyze": (AnalyzeInput, AnalyzeOutput),
    "summarize": (SummarizeInput, SummarizeOutput),
    "decide": (DecideInput, DecideOutput),
    "execute": (ExecuteInput, ExecuteOutput),
    "verify": (VerifyInput, VerifyOutput),
    "record": (RecordInput, RecordOutput),
}
"""Each step's input and output types."""
