"""The loop's steps as plain functions, shared by the embedded engine and the Kestra flows.

Each step takes one JSON object and returns one JSON object (see docs/ARCHITECTURE.md, "Steps").
Nothing here keeps state between calls: the engines store every output.

Two kinds of run go through the same steps:

- a **scenario** (``{"scenario": id}``, mock-data/): a recorded snapshot, actions run by the
  simulated executor, the outcome measured on the file's recorded post-action segment; every
  result says ``simulated: true``;
- a **live deployment** (``{"deployment": {...}, "source": ...}`` or the flat Kestra inputs):
  ``collect`` reads the service's configured sources and watches the verification window
  (:mod:`console.loop.verification`), ``execute`` acts through the service's configured executor
  (:mod:`console.executors`), ``verify`` measures recovery over a post-action window
  (:mod:`console.loop.outcome`).

``execute`` reports each action's result as it completes (``on_progress``) and skips actions a
previous, interrupted run already started, so an engine that re-runs it after a crash never runs a
rollback twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from console.domain.actions import ROLLBACK, changes_service
from console.domain.models import Decision, Severity, Snapshot, Verdict, format_time, now_text, parse_time
from console.domain.snapshot import SnapshotError, parse_snapshot, validate_document
from console.domain.vocabulary import STEP_TASKS, SUPERSEDED_ACTOR, TIMEOUT_ACTOR, DeploymentStatus
from console.executors import (
    DONE,
    FAILED,
    REFUSED,
    UNKNOWN,
    ActionRequest,
    ActionResult,
    Executor,
    ProbeError,
    ServiceState,
    build_executor,
)
from console.executors.base import AUTO
from console.executors.simulated import SimulatedExecutor
from console.loop import (
    acting,
    baselines,
    effectiveness,
    incidents,
    outcome,
    revisions,
    scenarios,
    verification,
)
from console.loop.step_io import (
    AnalyzeInput,
    AnalyzeOutput,
    CollectInput,
    CollectOutput,
    DecideInput,
    DecideOutput,
    ExecuteInput,
    ExecuteOutput,
    Look,
    RecordInput,
    RecordOutput,
    StepError,
    SummarizeInput,
    SummarizeOutput,
    VerifyInput,
    VerifyOutput,
    objects,
    text,
)
from console.settings import Settings
from console.telemetry import (
    MetricSource,
    ServiceConfig,
    TelemetryError,
    build_snapshot,
    build_source,
    load_services,
    service_config,
)
from console.telemetry.times import format_ts, to_epoch

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Progress = dict[str, dict[str, Any]]


STALE_DEPLOY_FACTOR = 10
"""A deployed_at older than this many windows is said to be old in the run's notes."""


# -- helpers ---------------------------------------------------------------------------------------------


def shift_document(doc: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    """A copy of a snapshot document with every timestamp moved by ``delta``."""
    cache: dict[str, str] = {}

    def move(text: str) -> str:
        out = cache.get(text)
        if out is None:
            out = cache[text] = format_time(parse_time(text) + delta)
        return out

    shifted = dict(doc)
    shifted["deployment"] = {**doc["deployment"], "deployed_at": move(doc["deployment"]["deployed_at"])}
    shifted["metrics"] = {
        name: [[move(ts), v] for ts, v in points] for name, points in doc["metrics"].items()
    }
    shifted["logs"] = [{**rec, "ts": move(rec["ts"])} for rec in doc["logs"]]
    return shifted


def latest_time(doc: dict[str, Any]) -> datetime:
    """The newest timestamp in a snapshot (metrics, logs or the deployment itself)."""
    texts = {ts for points in doc["metrics"].values() for ts, _ in points}
    texts.update(rec["ts"] for rec in doc["logs"])
    texts.add(doc["deployment"]["deployed_at"])
    return max(parse_time(t) for t in texts)


def load_scenario(scenario_id: str, settings: Settings) -> dict[str, Any]:
    """A scenario document from the mock-data directory (:mod:`console.loop.scenarios`)."""
    try:
        return scenarios.load_scenario_document(scenario_id, settings.mock_data_dir)
    except (LookupError, OSError) as exc:
        raise StepError(f"unknown scenario {scenario_id!r}") from exc
    except ValueError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else f"unusable scenario {scenario_id!r}"
        raise StepError(first_line) from exc


# -- steps -------------------------------------------------------------------------------------------------


def collect(
    data: dict[str, Any],
    settings: Settings,
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Snapshot for the run, and for a live deployment how its verification window ended.

    - ``{"scenario": id}``: the scenario's snapshot, moved in time so that its newest point is now
      (the deploy happened "now minus the verification window"), so today's KPIs and charts fit.
    - ``{"snapshot": doc}``: validated and passed on unchanged.
    - ``{"deployment": {...}, "source": ...}`` (the embedded engine's launch input) or the flat
      inputs ``{"deployment_id", "service", "version", "previous_version", "deployed_at",
      "deployed_by", "source"}`` (Kestra's): the service's configured sources
      (``CONSOLE_SERVICES_FILE``), baseline ``[deployed_at - baseline_s, deployed_at]``, then the
      verification window watched until the evidence is conclusive or the window ends
      (:mod:`console.loop.verification`). No source configured: a StepError, never mock data.

    A live collect is one **look** (:func:`console.loop.verification.look`): it never sleeps. Until
    the watch decides, it returns ``done: false`` with when to look again (``wait``, ``until``),
    what it waits for and the ``watch`` to give the next look (see :func:`waiting`); the engine
    waits (a persisted wake-up, a Kestra Pause) and calls it again with ``watch`` in the input.

    Output: ``{"snapshot": doc, "verification": {...} or null}`` (null for scenarios and given
    snapshots: nothing was watched), plus the look's keys (``done: true``).
    """
    given = CollectInput.from_dict(data)
    now = now or datetime.now(UTC)
    if given.snapshot is not None:
        return CollectOutput(_valid_document(given.snapshot)).to_dict()
    if given.scenario is not None:
        doc = {k: v for k, v in load_scenario(given.scenario, settings).items() if k != "post_action"}
        doc = _valid_document(doc)
        return CollectOutput(shift_document(doc, now - latest_time(doc))).to_dict()
    if given.incident:
        return collect_incident(given.launch, settings, given.watch, clock=clock or time.time).to_dict()
    assert given.deployment is not None
    return collect_live(given.deployment, settings, given.watch, clock=clock or time.time).to_dict()


def _valid_document(doc: Any) -> dict[str, Any]:
    try:
        validate_document(doc)
    except SnapshotError as exc:
        raise StepError(f"collect: snapshot {exc}") from None
    return doc


# -- looks: a step that waits returns when to look again instead of sleeping -----------------------------

TELEMETRY_LOST = verification.TELEMETRY_LOST


def waiting(until: float, watch: dict[str, Any], reason: str, *, now: float, urgent: bool) -> Look:
    """A look that is not the last: when to look again, the progress to give the next look and
    what it waits for (:class:`~console.loop.step_io.Look`)."""
    return Look(
        done=False,
        wait=f"PT{max(until - now, 0.001):.3f}S",
        until=format_ts(until),
        watch=json.dumps(watch, separators=(",", ":")),
        waiting_for=reason,
        urgent=bool(urgent),
    )


def run_looks(
    step: Callable[..., dict[str, Any]],
    data: Mapping[str, Any],
    settings: Settings,
    *,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
    looks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Call a step that looks (collect, collect_incident, verify) until its last look, here: each
    waiting output's ``until`` is slept to and its ``watch`` given to the next look. For benchmarks,
    scripts and tests; the engines persist the wake-up instead and hold no thread while waiting.
    ``looks`` collects the waiting outputs, if given."""
    out = step(data, settings, clock=clock)
    while out.get("done") is False:
        if looks is not None:
            looks.append(out)
        sleep(max(0.0, to_epoch(str(out["until"])) - clock()))
        out = step({**data, "watch": out["watch"]}, settings, clock=clock)
    return out


_HTTP = threading.local()


def http_session() -> requests.Session:
    """This thread's HTTP session, kept: the looks of every watch reuse its connections to the
    sources (a look that opened six new connections each time cost more than its analysis)."""
    session = getattr(_HTTP, "session", None)
    if session is None:
        session = _HTTP.session = requests.Session()
    return session


def _epoch(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _lost_verification(
    exc: verification.TelemetryLost, state: verification.WatchState, elapsed: float
) -> dict[str, Any]:
    """collect's ``verification`` when the source never came back: the decision escalates."""
    since = format_ts(exc.since)
    return {
        "ended": TELEMETRY_LOST,
        "reason": f"telemetry lost since {since}: {exc.detail}",
        "lost_since": since,
        "evaluations": state.evaluations,
        "elapsed_s": round(elapsed, 3),
        "notes": list(state.notes),
        "links": dict(state.links),
    }


def service_environment(service: str, settings: Settings) -> str | None:
    """The environment the services file gives a service, or None (not configured, unreadable)."""
    try:
        return service_config(service, settings).environment
    except TelemetryError:
        return None


def _service_config(deployment: Mapping[str, Any], settings: Settings, step: str) -> ServiceConfig:
    service = deployment.get("service")
    if not service:
        raise StepError(f"{step}: deployment needs 'service'")
    try:
        return service_config(str(service), settings)
    except TelemetryError as exc:
        raise StepError(f"{step}: {exc}") from None


def _metric_source(config: ServiceConfig, step: str) -> MetricSource | None:
    """The service's metric source, built once for a run (its secrets read now)."""
    if config.metrics is None:
        return None
    try:
        return build_source(config.metrics, session=http_session())
    except TelemetryError as exc:
        raise StepError(f"{step}: {exc}") from None


def _step_s(source: MetricSource | None, window_s: float) -> float | None:
    """One step for every query of a run (so baseline and window points line up): about 300
    points over ``window_s``, never finer than the scrape interval."""
    return source.step(window_s) if source is not None else None


@dataclass
class _Watched:
    """What every poll of a run shares: the service, its source, the step, the history."""

    config: ServiceConfig
    source: MetricSource | None
    step: float | None
    context: baselines.Context
    reference: Any = None

    @classmethod
    def open(
        cls,
        config: ServiceConfig,
        deployment: Mapping[str, Any],
        deployed: float,
        span: float,
        settings: Settings,
    ) -> _Watched:
        source = _metric_source(config, "collect")
        windows = config.windows
        step = _step_s(source, windows.baseline_s + span)
        context = baselines.read_context(
            config.name, str(deployment.get("version") or ""), deployed, settings
        )
        reference = None
        if source is not None:
            reference = baselines.known_good_reference(source, context, step)
        return cls(config, source, step, context, reference)

    def fetch(self, deployment: dict[str, Any], start: float, end: float) -> verification.Fetched:
        collected = build_snapshot(
            self.config, deployment, start, end, step_s=self.step, source=self.source, session=http_session()
        )
        baselines.attach(collected.snapshot, self.context, self.reference)
        return verification.Fetched(collected.snapshot, collected.notes + self.context.notes, collected.links)


def collect_live(
    deployment: dict[str, Any], settings: Settings, watch: dict[str, Any], *, clock: Clock = time.time
) -> CollectOutput:
    """One look at a live deployment's window (``watch``: what the previous look returned)."""
    config = _service_config(deployment, settings, "collect")
    if not deployment.get("version"):
        raise StepError("collect: deployment needs 'version'")
    now = clock()
    notes: list[str] = []
    if deployment.get("deployed_at"):
        try:
            deployed = to_epoch(str(deployment["deployed_at"]))
        except (ValueError, TypeError, OverflowError):
            raise StepError(
                f"collect: deployment.deployed_at {deployment['deployed_at']!r} is not a timestamp"
            ) from None
    else:  # the first look fixed the moment; later looks keep it
        deployed = _epoch(watch.get("deployed_at")) or now
        notes.append("deployed_at not given: the deploy is taken to have happened when this run started")
    deployment = {**deployment, "deployed_at": format_ts(deployed)}
    age = clock() - deployed
    if age > STALE_DEPLOY_FACTOR * (config.windows.baseline_s + config.windows.verify_s):
        notes.append(
            f"deployed_at is {age / 3600:.1f} h old: the windows right before and after it are judged, "
            "as they were then (not how the service runs now)"
        )
    if not deployment.get("id"):
        deployment["id"] = f"{deployment['service']}-{deployment['version']}-{int(deployed)}"
    windows = config.windows
    watched = _Watched.open(config, deployment, deployed, windows.verify_s, settings)

    def fetch(end: float) -> verification.Fetched:
        return watched.fetch(deployment, deployed - windows.baseline_s, end)

    out = _look_at_window(deployed, windows.verify_s, fetch, watch, settings, now=now, deployment=deployment,
                          progress={"deployed_at": deployed},
                          wait_for_samples=watched.source is not None)  # fmt: skip
    if isinstance(out, CollectOutput):
        return out
    summary = out.to_dict()
    summary["notes"] = notes + summary["notes"]
    summary["baseline_health"] = revisions.baseline_health(out.snapshot, windows.baseline_s)
    summary["target_state"] = target_state(deployment, settings)
    return CollectOutput(out.snapshot, summary)


def target_state(deployment: Mapping[str, Any], settings: Settings | None) -> dict[str, Any] | None:
    """What the service's executor says runs now (its ``probe``), or None when it has no real
    executor or its state cannot be read. Evidence for the revision history, taken at decision time."""
    executor, _ = executor_for(deployment, None, settings, live=True)
    if executor is None or executor.simulated or not executor.can_probe():
        return None
    try:
        return executor.probe(str(deployment.get("service") or "")).to_dict()
    except ProbeError:
        return None


def collect_incident(
    data: Mapping[str, Any], settings: Settings, watch: dict[str, Any], *, clock: Clock = time.time
) -> CollectOutput:
    """An incident's snapshot (:mod:`console.loop.incidents`): the service's configured sources over
    the baseline before the suspect deploy (or before the alert started) and the window since,
    watched like a deployment's verification window: it ends early when the evidence is
    conclusive, else once the service's ``verify_s`` has passed since the window's start (at once
    when the alert started longer ago than that). One look per call, like :func:`collect_live`.
    Output: collect's, plus ``incident`` (the incident as checked, with its ``deployment``)."""
    try:
        incident = incidents.incident_input(data, settings)
    except incidents.IncidentError as exc:
        raise StepError(f"collect: {exc}") from None
    config = _service_config(incident, settings, "collect")
    deployment = incidents.incident_deployment(incident, config.environment)
    now = clock()
    start, span = _epoch(watch.get("start")), _epoch(watch.get("span"))
    windows = config.windows
    if start is None or span is None:  # the first look fixes the window
        try:
            start = to_epoch(deployment["deployed_at"])
        except (ValueError, TypeError, OverflowError):
            shown = deployment["deployed_at"]
            raise StepError(f"collect: the incident's start {shown!r} is not usable") from None
        start = min(start, now)  # an alert from a clock ahead of ours
        span = max(windows.verify_s, now - start)
    deployment["deployed_at"] = format_ts(start)
    watched = _Watched.open(config, deployment, start, span, settings)

    def fetch(end: float) -> verification.Fetched:
        return watched.fetch(deployment, start - windows.baseline_s, end)

    incident["deployment"] = deployment
    out = _look_at_window(start, span, fetch, watch, settings, now=now, deployment=deployment,
                          progress={"start": start, "span": span}, incident=incident,
                          wait_for_samples=watched.source is not None)  # fmt: skip
    if isinstance(out, CollectOutput):
        return out
    summary = out.to_dict()
    summary["notes"] = [incidents.window_note(incident, out.snapshot["deployment"]), *summary["notes"]]
    summary["target_state"] = target_state(deployment, settings)
    incident["deployment"] = out.snapshot["deployment"]
    return CollectOutput(out.snapshot, summary, incident)


def _look_at_window(
    start: float,
    span: float,
    fetch: Callable[[float], verification.Fetched],
    watch: dict[str, Any],
    settings: Settings,
    *,
    now: float,
    deployment: dict[str, Any],
    progress: dict[str, Any],
    incident: dict[str, Any] | None = None,
    wait_for_samples: bool = True,
) -> CollectOutput | verification.WatchResult:
    """One look at the watched window ``[start, start + span]``: the watch's result, or collect's
    outputs when it is not decided (waiting) or the telemetry was lost (done, escalating).
    ``progress`` is what the next look needs besides the watch's state; ``incident`` the incident
    an incident run's outputs carry."""
    state = verification.WatchState.from_dict(watch.get("state"))
    try:
        out = verification.look(
            start,
            span,
            fetch,
            state,
            now=now,
            poll_s=settings.live_poll_s,
            grace_s=settings.live_telemetry_grace_s,
            wait_for_samples=wait_for_samples,
        )
    except verification.TelemetryLost as exc:
        empty = {"deployment": deployment, "metrics": {}, "logs": []}
        lost = _lost_verification(exc, state, now - start)
        return CollectOutput(empty, lost, incident)
    except TelemetryError as exc:  # a problem of the deployment itself (InvalidDeployment)
        raise StepError(f"collect: {exc}") from None
    if isinstance(out, verification.Wait):
        next_look = {**progress, "state": out.state.to_dict()}
        return CollectOutput(look=waiting(out.until, next_look, out.reason, now=now, urgent=out.urgent))
    return out


def analyze(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from console.analysis import analyze as run_analysis

    given = AnalyzeInput.from_dict(data)
    snapshot = _parsed_snapshot(given.snapshot, "analyze")
    watched_window = given.verification
    if watched_window is not None and watched_window.get("ended") == TELEMETRY_LOST:
        return AnalyzeOutput(telemetry_lost_decision(watched_window)).to_dict()
    return AnalyzeOutput(run_analysis(snapshot, settings)).to_dict()


def _parsed_snapshot(doc: Any, step: str) -> Snapshot:
    try:
        return parse_snapshot(doc)
    except SnapshotError as exc:
        raise StepError(f"{step}: snapshot {exc}") from None


def telemetry_lost_decision(watched_window: Mapping[str, Any]) -> Decision:
    """The decision when the window could not be read at all when it had to be judged: nobody can
    say the deployment is healthy, so a person must (ESCALATE, no action), with the reason."""
    reason = text(watched_window.get("reason")) or "telemetry lost"
    return Decision(
        verdict=Verdict.ESCALATE,
        severity=Severity.HIGH,
        confidence=0.4,
        summary=f"{reason}. The deployment could not be judged: a person must check it.",
        root_cause="telemetry lost: the service's metrics could not be read when the window had to be judged",
        actions=[],
        metrics=[],
        log_patterns=[],
        analyzer="rules",
        rules_verdict=Verdict.ESCALATE,
        notes=[reason],
        impact="unknown: nothing was measured",
        reasoning="No evidence either way; the loop never calls a deployment healthy without evidence.",
    )


def summarize(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The LLM narrative; never fails on the LLM's account (llm.summarize falls back to the rules)."""
    from console.loop.narrative import summarize as llm_summarize

    given = SummarizeInput.from_dict(data)
    snapshot = _parsed_snapshot(given.snapshot, "summarize")
    return SummarizeOutput(llm_summarize(snapshot, given.decision, settings)).to_dict()


def decide(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from console.loop.policy import plan_actions

    given = DecideInput.from_dict(data)
    decision = given.decision
    table = None
    if settings is not None and settings.policy_use_effectiveness:
        table = effectiveness.load_effectiveness(settings)
    plan = plan_actions(decision, settings, effectiveness=table)
    plan_doc = {**plan.to_dict(), "needs_approval": bool(plan.needs_approval)}
    plan_doc["watch"] = outcome.decisive_metrics(decision.to_dict())
    history, deployment = given.revisions, given.deployment
    if history is not None and deployment is not None and acts_for_real(deployment, settings):
        plan_doc = plan_rollback_target(plan_doc, revisions.revisions(history), deployment)
    routing = None
    if given.incident is not None:  # an incident run: the alert's severity routes the plan
        try:
            plan_doc, routing = incidents.route(
                plan_doc, given.incident.get("severity"), critical_approvers=settings.critical_approvers
            )
        except incidents.IncidentError as exc:
            raise StepError(f"decide: {exc}") from None
    verdict, severity = decision.verdict.value, decision.severity.value
    return DecideOutput(plan_doc, verdict, severity, round(decision.confidence, 4), routing).to_dict()


def acts_for_real(deployment: Mapping[str, Any], settings: Settings | None) -> bool:
    """Whether a watched deployment's actions would change a real service (its executor is not the
    simulated one): only then do the revision history and the preconditions apply."""
    if not deployment.get("version"):
        return False
    executor, _ = executor_for(deployment, None, settings, live=True)
    return executor is not None and not executor.simulated


def plan_rollback_target(
    plan: dict[str, Any], history: list[revisions.Revision], deployment: Mapping[str, Any]
) -> dict[str, Any]:
    """The plan with its rollback's target taken from the revision history
    (:func:`console.loop.revisions.rollback_target`): the newest known-good version before the
    current one, never the announced previous version (a hint, only checked). With no known-good
    version the rollback leaves the plan, which says so: the run escalates."""
    current = str(deployment.get("version"))
    target = revisions.rollback_target(history, current, hint=text(deployment.get("previous_version")))
    out = {**plan, "notes": list(plan.get("notes") or [])}
    out["notes"] += [f"rollback target: {note}" for note in target.notes]
    escalated = []
    for key in ("auto", "approval"):
        kept = []
        for action in out.get(key) or []:
            if action.get("name") != ROLLBACK:
                kept.append(action)
            elif target.version is None:
                escalated.append({**action, "skipped": "no known-good version", "reason": target.reason})
            else:
                params = {k: v for k, v in (action.get("params") or {}).items() if k != "to_version"}
                kept.append(
                    {**action, "params": {**params, "to_version": target.version}, "target": target.to_dict()}
                )
        out[key] = kept
    if escalated:
        out["notes"].append(f"no rollback: {target.reason}; escalated to a human")
        out["escalated"] = escalated
        out["needs_approval"] = bool(out.get("approval"))
        if not out.get("approval"):
            out["required_approvals"] = 0
    return out


# -- execute -------------------------------------------------------------------------------------------


def executor_for(
    deployment: Mapping[str, Any] | None, scenario: str | None, settings: Settings | None, *, live: bool
) -> tuple[Executor | None, str | None]:
    """(executor, problem). Only a live deployment (``live``: one the run watched) is acted on for
    real, through its service's ``executor`` section (simulated when it has none); a scenario, a
    snapshot given as evidence, or a service not in the services file get the simulated executor.
    A services file or executor section that cannot be used is a problem (one line): the actions
    then fail with it rather than run on a guess."""
    if not live or scenario or deployment is None or settings is None or settings.services_file is None:
        return SimulatedExecutor(), None
    service = text(deployment.get("service"))
    try:
        services = load_services(settings.services_file, settings).services
    except TelemetryError as exc:
        if not settings.services_file.exists():
            return SimulatedExecutor(), None
        return None, str(exc).splitlines()[0]
    config = services.get(service or "")
    if config is None:
        return SimulatedExecutor(), None
    try:
        return build_executor(config.executor, where=f"services.{service}.executor"), None
    except ValueError as exc:
        return None, str(exc)


def _approver(mode: str, approval: Mapping[str, Any] | None) -> str:
    if mode == "auto" or not approval:
        return AUTO
    return text(approval.get("approver")) or "approver"


def _unapproved_reason(approval: dict[str, Any] | None) -> str:
    """Why risky actions were skipped: the approval service closed the approval (superseded), it
    expired, it was rejected, or there was none."""
    if _superseded(approval):
        return "superseded"
    if _expired(approval):
        return "expired"
    return "no approval" if approval is None else "rejected"


def _approval_gate(
    plan: dict[str, Any], approval: dict[str, Any] | None
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]], dict[str, Any] | None]:
    """(the actions to run, each with its mode; the actions skipped, each saying why; the
    supersession when the approval service closed the approval because the service moved on).
    Auto actions always run; approval actions only when approved."""
    runs: list[tuple[str, dict[str, Any]]] = [
        ("auto", a) for a in objects(plan.get("auto"), "execute: plan.auto")
    ]
    skipped = list(objects(plan.get("escalated"), "execute: plan.escalated"))
    risky = objects(plan.get("approval"), "execute: plan.approval")
    if not risky:
        return runs, skipped, None
    if is_approved(approval):
        return [*runs, *(("approved", a) for a in risky)], skipped, None
    reason = _unapproved_reason(approval)
    superseded = None
    if reason == "superseded":
        superseded = {"reason": str((approval or {}).get("comment") or "superseded"), "by": "approval"}
    return runs, [*skipped, *({**a, "skipped": reason} for a in risky)], superseded


def _restored(progress: Progress | None) -> Progress:
    """A copy of what an interrupted run of the step reported, one entry per action."""
    return {k: dict(v) for k, v in (progress or {}).items() if isinstance(v, dict)}


def _action_params(action: Mapping[str, Any]) -> dict[str, Any]:
    return dict(action.get("params")) if isinstance(action.get("params"), dict) else {}


def _kept_beside(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What a progress entry keeps beside an action's result (its target, precondition, request)."""
    return {k: entry[k] for k in ("target", "precondition", "request") if entry.get(k) is not None}


def _resumed(
    entry: Mapping[str, Any], action: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(result, the params sent, what is kept beside) of an action the interrupted run settled."""
    params = (entry.get("request") or {}).get("params") or _action_params(action)
    return entry["result"], params, _kept_beside(entry)


@dataclass
class _Attempts:
    """The actions of one execute call as they run: where they act (``executor``, or ``problem``
    when the service's executor cannot be used), what an interrupted run of the step reported
    (``state``, reported through ``on_progress`` as each action moves on) and, once known, why the
    decision is superseded (every later change is then refused)."""

    execution_id: str | None
    approval: dict[str, Any] | None
    executor: Executor | None
    problem: str | None
    deployment: dict[str, Any]
    real: bool
    version: str | None
    sleep: Sleep
    state: Progress
    on_progress: Callable[[Progress], None] | None
    superseded: dict[str, Any] | None

    def save(self) -> None:
        if self.on_progress:
            self.on_progress(self.state)

    def run(self, index: int, mode: str, action: dict[str, Any], watch: list[Any]) -> dict[str, Any]:
        """The executed entry of one action: its recorded result, or the reconciled result of a call
        the interrupted run made, or a new attempt."""
        key = f"{index}:{mode}:{action.get('name')}"
        entry = self.state.get(key)
        if entry is not None and isinstance(entry.get("result"), dict):
            result, params, extra = _resumed(entry, action)
        elif entry is not None and self._may_have_acted(entry):
            result, params, extra = _resumed(self._reconciled(key, entry), action)
        else:  # not started, interrupted before its call (nothing was sent), or a simulation
            result, params, extra = self._attempt(key, mode, action)
        reason = acting.superseded_reason(result)
        if reason and self.superseded is None:
            self.superseded = {"reason": reason, "by": "precondition", "at": now_text()}
        return {**action, "mode": mode, **result, "params": params, "watch": watch, **extra}

    def _may_have_acted(self, entry: Mapping[str, Any]) -> bool:
        """Whether an action interrupted without a result may have reached a real target (it was
        past its check)."""
        return self.executor is not None and not self.executor.simulated and entry.get("phase") != "checking"

    def _reconciled(self, key: str, entry: dict[str, Any]) -> dict[str, Any]:
        """The interrupted action's entry with its result read from the target (never called twice
        on a target without idempotency keys)."""
        assert self.executor is not None
        result = acting.reconcile_interrupted(self.executor, entry, sleep=self.sleep).to_dict()
        self.state[key] = {**entry, "result": result}
        self.save()
        return self.state[key]

    def _attempt(
        self, key: str, mode: str, action: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        executor = self.executor
        started = now_text()
        self.state[key] = {
            "started_at": started,
            "executor": executor.name if executor else "unconfigured",
            "phase": "checking",
        }
        self.save()
        if executor is None:
            result = _unusable(str(action.get("name")), self.problem, started)
            params, extra = _action_params(action), {}
        else:
            result, params, extra = _act(
                executor,
                action,
                mode=mode,
                approval=self.approval,
                dep=self.deployment,
                execution_id=self.execution_id,
                real=self.real,
                version=self.version,
                superseded=self.superseded,
                state=self.state[key],
                save=self.save,
                sleep=self.sleep,
            )
        self.state[key].update({"result": result, **extra})
        self.save()
        return result, params, extra


def _unusable(name: str, problem: str | None, started_at: str) -> dict[str, Any]:
    """The failed result of an action whose service's executor cannot be used."""
    return ActionResult(
        action=name,
        status=FAILED,
        simulated=False,
        executor="unconfigured",
        detail=f"executor not usable: {problem}",
        started_at=started_at,
        finished_at=now_text(),
    ).to_dict()


def execute(
    data: dict[str, Any],
    settings: Settings | None,
    *,
    progress: Progress | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    sleep: Sleep | None = None,
) -> dict[str, Any]:
    """Run the plan through the service's executor when the run is a watched live deployment
    (``verification``, collect's output, in the input), else the simulated one. Auto actions always
    run; approval actions only when approved: a rejected, expired or superseded approval runs
    nothing risky.

    On a real target each action that changes the service is checked right before it runs
    (:mod:`console.loop.acting`): a service that moved on since the decision supersedes it (nothing
    runs, ``superseded`` says what changed and when); a rollback goes only to the target the
    approval (or the plan, from the revision history) named; an unknown result is reconciled.

    ``progress`` is what an interrupted run of this step reported (``on_progress`` is called with
    it, updated, as each action moves on): an action with a recorded result is not run again; one
    interrupted during its call is reconciled through the target's state (never reported failed
    while the change happened, never called twice on a target without idempotency keys); one
    interrupted before its call runs now."""
    given = ExecuteInput.from_dict(data)
    plan, approval, live = given.plan, given.approval, given.watched
    executor, problem = executor_for(given.deployment, given.scenario, settings, live=live)
    runs, skipped, superseded = _approval_gate(plan, approval)
    dep = given.deployment or {}
    attempts = _Attempts(
        execution_id=given.execution_id,
        approval=approval,
        executor=executor,
        problem=problem,
        deployment=dep,
        real=live and executor is not None and not executor.simulated,
        version=acting.decided_version(dep, given.verification),
        sleep=sleep or time.sleep,
        state=_restored(progress),
        on_progress=on_progress,
        superseded=superseded,
    )
    watch = list(plan.get("watch") or [])
    executed = [attempts.run(index, mode, action, watch) for index, (mode, action) in enumerate(runs)]
    status = deployment_status(given.verdict, executed, approval)
    if attempts.superseded is not None:
        status = DeploymentStatus.SUPERSEDED
    simulated = executor is not None and bool(executor.simulated)
    return ExecuteOutput(executed, skipped, status.value, simulated, attempts.superseded).to_dict()


def _act(
    executor: Executor,
    action: Mapping[str, Any],
    *,
    mode: str,
    approval: Mapping[str, Any] | None,
    dep: Mapping[str, Any],
    execution_id: str | None,
    real: bool,
    version: str | None,
    superseded: Mapping[str, Any] | None,
    state: dict[str, Any],
    save: Callable[[], None],
    sleep: Sleep,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One action, checked and attempted: (result, the request's params, what to keep beside it)."""
    name = str(action.get("name"))
    params = dict(action.get("params")) if isinstance(action.get("params"), dict) else {}
    target: dict[str, Any] | None = None
    refusal: str | None = None
    if name == ROLLBACK:
        params, target, refusal = acting.rollback_params(action, approval, live=real)
    checked = real and changes_service(name)
    request = ActionRequest(
        action=name,
        service=text(dep.get("service")) or "unknown",
        params=params,
        version=text(dep.get("version")),
        previous_version=text(dep.get("previous_version")),
        deployment_id=text(dep.get("id")),
        execution_id=execution_id,
        approved_by=_approver(mode, approval),
        expected_version=version if checked else None,
    )
    extra: dict[str, Any] = {"target": target} if target else {}
    now = now_text()
    if refusal is not None:
        return _refused(executor, name, refusal, now), params, extra
    if checked and superseded is not None:  # an earlier action found the decision superseded
        why = str(superseded.get("reason"))
        return (
            acting.superseded_result(name, executor, why, acting.Check(None, at=now)).to_dict(),
            params,
            extra,
        )
    check = acting.check_now(executor, dep, version=version, sleep=sleep) if checked else None
    if check is not None:
        extra["precondition"] = check.to_dict()
        if check.superseded:
            return acting.superseded_result(name, executor, check.superseded, check).to_dict(), params, extra
        if check.busy:
            return _refused(executor, name, f"{check.busy}: nothing was sent", now), params, extra
    before = check.state if check is not None else None
    state.update(
        {"phase": "calling", "request": request.to_dict(), "before": before.to_dict() if before else None}
    )
    save()
    extra["request"] = request.to_dict()
    result = acting.attempt(executor, request, before=before, sleep=sleep)
    return result.to_dict(), params, extra


def _refused(executor: Executor, name: str, detail: str, at: str) -> dict[str, Any]:
    return ActionResult(
        action=name,
        status=REFUSED,
        simulated=bool(executor.simulated),
        executor=executor.name,
        detail=detail,
        started_at=at,
        finished_at=now_text(),
    ).to_dict()


def _rollback_changed(action: Mapping[str, Any]) -> bool:
    """A rollback that was done and changed the target (simulated for a scenario: the flag says so)."""
    if action.get("status") == "simulated":  # records of before the executors
        return True
    return action.get("status") == DONE and not action.get("dry_run")


def _rollback_outcome(rollbacks: list[dict[str, Any]]) -> DeploymentStatus | None:
    """What the rollbacks' results settle: ``rolled back`` when one was done and changed the target,
    ``result unknown`` while one's result is not known; None when they settle nothing."""
    if any(_rollback_changed(a) for a in rollbacks):
        return DeploymentStatus.ROLLED_BACK
    if any(a.get("status") == UNKNOWN for a in rollbacks):
        return DeploymentStatus.RESULT_UNKNOWN
    return None


def _changed_service(action: Mapping[str, Any]) -> bool:
    """An action that changed the service (done, or simulated for a scenario; not a dry run)."""
    return (
        changes_service(action.get("name"))
        and action.get("status") in ("done", "simulated")
        and not action.get("dry_run")
    )


def _escalated(verdict: str | None, approval: dict[str, Any] | None) -> bool:
    """Whether the deployment is left to a human: one kept risky actions from running (or nobody
    answered), the verdict was ESCALATE, or a ROLLBACK was called for and did not run."""
    if approval is not None and not is_approved(approval):
        return True
    return verdict in (Verdict.ESCALATE.value, Verdict.ROLLBACK.value)


def deployment_status(
    verdict: str | None, executed: list[dict[str, Any]], approval: dict[str, Any] | None
) -> DeploymentStatus:
    """The deployment's status from the (reconciled) results: ``rolled back`` only when a rollback
    was done and changed the target; ``result unknown`` while a rollback's result is not known;
    ``superseded`` when the service had moved past the decision; ``rollback failed`` when one was
    attempted and failed or was refused."""
    actions = [a for a in executed if isinstance(a, dict)]
    rollbacks = [a for a in actions if a.get("name") == ROLLBACK]
    settled = _rollback_outcome(rollbacks)
    if settled is not None:
        return settled
    if any(acting.superseded_reason(a) for a in actions) or _superseded(approval):
        return DeploymentStatus.SUPERSEDED
    if any(a.get("status") in (FAILED, REFUSED) for a in rollbacks):
        return DeploymentStatus.ROLLBACK_FAILED
    if _escalated(verdict, approval):
        return DeploymentStatus.ESCALATED
    return (
        DeploymentStatus.REMEDIATED if any(_changed_service(a) for a in actions) else DeploymentStatus.HEALTHY
    )


def status_after_verify(executed: list[dict[str, Any]], current: str | None) -> str | None:
    """The deployment's status once verify reconciled its actions: what the reconciled rollback
    says (rolled back, still unknown, failed), else ``current`` unchanged."""
    settled = _rollback_outcome([a for a in executed if isinstance(a, dict) and a.get("name") == ROLLBACK])
    return settled.value if settled is not None else current


# -- verify ----------------------------------------------------------------------------------------------


def verify(
    data: dict[str, Any],
    settings: Settings,
    *,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Measure the outcome: the post-action window against the pre-deploy baseline, by the same
    metric judge (:mod:`console.loop.outcome`).

    Input: ``{"snapshot": doc}`` or ``{"deployment": {...}, "scenario": id or {"id"} or null}``,
    ``"executed"`` (execute's list; which recorded segment a scenario uses depends on whether a
    remediation ran) and ``"verification"`` (collect's; present for a watched live deployment). A
    scenario is judged on its file's recorded post-action segment, time-shifted like its snapshot
    (``source: "recorded scenario segment"``, ``simulated: true``); a live deployment on a window of
    ``post_action_s`` seconds that starts at the first look, read from its Prometheus: like
    ``collect``, a live verify is a look that returns ``done: false`` until the window has passed
    (``watch`` in the next input). A snapshot given as evidence is inconclusive (nothing was
    watched). A source that fails is waited for up to ``live_telemetry_grace_s``, then gives
    ``inconclusive`` with the reason, never a failed step: the actions have run by now and the
    record must be kept."""
    given = VerifyInput.from_dict(data)
    if given.scenario:
        measured = _verify_scenario(given.scenario, given.deployment, given.executed, settings)
    elif given.verification is not None:
        return _verify_live(given, settings, clock or time.time).to_dict()
    else:
        measured = outcome.inconclusive(
            "a snapshot given as evidence, not a deployment the loop watched: nothing to measure after it"
        )
    return VerifyOutput(measured).to_dict()


def reconcile_pending(
    executed: list[dict[str, Any]], executor: Executor, within_s: float, clock: Clock, sleep: Sleep
) -> list[dict[str, Any]]:
    """``executed`` with each action whose result was unknown settled by reading the target (a keyed
    target gets the same call again, never acting twice), for at most ``within_s`` seconds with
    backoff: the post-action window is measured from when the results are known. An action still
    unknown at the end stays unknown (never turned into failed)."""
    out = [dict(a) for a in executed]
    pending = [
        i for i, a in enumerate(out) if a.get("status") == UNKNOWN and isinstance(a.get("request"), dict)
    ]
    deadline = clock() + within_s
    pause = 1.0
    while pending:
        for i in list(pending):
            try:
                request = ActionRequest.from_dict(out[i]["request"])
                result = ActionResult.from_dict(out[i])
            except ValueError:
                pending.remove(i)
                continue
            check = out[i].get("precondition")
            before = ServiceState.from_dict(check.get("state")) if isinstance(check, dict) else None
            settled = executor.reconcile(request, result, before=before, attempts=1, sleep=sleep)
            if settled.status != UNKNOWN:
                out[i] = {**out[i], **settled.to_dict()}
                pending.remove(i)
        left = deadline - clock()
        if not pending or left <= 0:
            break
        sleep(min(pause, left))
        pause = min(pause * 2, 5.0)
    return out


def _shift_series(metrics: Mapping[str, Any], delta: timedelta) -> dict[str, list[list[Any]]]:
    return {
        name: [[format_time(parse_time(ts) + delta), value] for ts, value in points]
        for name, points in metrics.items()
        if isinstance(points, list)
    }


def _verify_scenario(
    scenario_id: str, deployment: dict[str, Any], executed: list[dict[str, Any]], settings: Settings
) -> dict[str, Any]:
    doc = load_scenario(scenario_id, settings)
    found = outcome.scenario_segment(doc, executed)
    if found is None:
        return outcome.inconclusive(
            f"scenario {scenario_id!r} has no recorded post-action segment",
            source=outcome.RECORDED,
            simulated=True,
        )
    which, segment = found
    try:
        delta = parse_time(str(deployment["deployed_at"])) - parse_time(doc["deployment"]["deployed_at"])
    except (KeyError, ValueError, TypeError):
        raise StepError("verify: deployment.deployed_at is missing or not a timestamp") from None
    deployed_at = format_time(parse_time(doc["deployment"]["deployed_at"]) + delta)
    baseline = outcome.split_baseline(_shift_series(doc["metrics"], delta), deployed_at)
    window = _shift_series(segment.get("metrics") or {}, delta)
    start, end = outcome.window_of(window)
    if start is None or end is None:
        return outcome.inconclusive(
            f"scenario {scenario_id!r}: the recorded {which.replace('_', ' ')} segment has no metrics",
            source=outcome.RECORDED,
            simulated=True,
        )
    measured = outcome.judge_recovery(
        {**deployment, "deployed_at": deployed_at},
        baseline,
        window,
        window_start=start,
        window_end=end,
        baseline_end=deployed_at,
        source=outcome.RECORDED,
        simulated=True,
    )
    measured["reason"] = f"simulated ({which.replace('_', ' ')} segment): {measured['reason']}"
    return measured


def _reconcile_look(
    settled: list[dict[str, Any]],
    executor: Executor,
    watch: Mapping[str, Any],
    now: float,
    clock: Clock,
    settings: Settings,
) -> tuple[list[dict[str, Any]], Look | None]:
    """One reading of the target for the actions whose result is unknown: (the actions as settled so
    far, verify's next look while some are still unknown, for at most ``live_reconcile_s``)."""
    settled = reconcile_pending(settled, executor, 0.0, clock, lambda _s: None)
    until = _epoch(watch.get("reconcile_until")) or now + settings.live_reconcile_s
    if not any(a.get("status") == UNKNOWN for a in settled) or now >= until:
        return settled, None
    pause = min(max(_epoch(watch.get("pause")) or 1.0, 1.0), 5.0)
    progress = {"actions": settled, "reconcile_until": until, "pause": min(pause * 2, 5.0)}
    what = "the action's result (reading the target)"
    return settled, waiting(min(now + pause, until), progress, what, now=now, urgent=False)


def _measurable(deployment: Mapping[str, Any], settings: Settings) -> tuple[ServiceConfig, float] | str:
    """(the service's configuration, when it was deployed) for measuring its post-action window, or
    why the window cannot be measured."""
    try:
        config = _service_config(deployment, settings, "verify")
    except StepError as exc:
        return str(exc).removeprefix("verify: ")
    if config.metrics is None:
        return f"no Prometheus configured for service {config.name!r}: recovery is measured on metrics"
    try:
        return config, to_epoch(str(deployment["deployed_at"]))
    except (KeyError, ValueError, TypeError, OverflowError):
        return "deployment.deployed_at is missing or not a timestamp"


def _gated_on_health(
    measured: dict[str, Any], executor: Executor | None, deployment: Mapping[str, Any]
) -> dict[str, Any]:
    """``measured`` gated by the instance's state at the window's end, when the target can say it
    (a service not ready or crash-looping is never resolved); a state that cannot be read is noted."""
    if executor is None or not executor.can_probe():
        return measured
    try:
        health = executor.probe(str(deployment.get("service") or ""))
    except ProbeError as exc:
        measured["notes"] = [*measured.get("notes", []), f"the instance's state could not be read: {exc}"]
        return measured
    return outcome.gate_on_health(measured, health.to_dict())


def _verify_live(given: VerifyInput, settings: Settings, clock: Clock) -> VerifyOutput:
    """One look at the post-action window (``watch``: what the looks before kept: the actions as
    reconciled so far, when the window started, since when the source fails): verify's outputs,
    done or waiting. First, an action whose result is unknown is settled by reading the target, one
    reading a look, for at most ``live_reconcile_s`` (the window starts once the results are known);
    then the window is measured against the baseline: the known-good target's measured window when
    a rollback went to one, else the pre-deploy baseline, on the metrics the decision rested on
    (``watch`` of the plan), and the instance's state at the window's end gates it: a service not
    ready or crash-looping is never resolved."""
    now = clock()
    deployment, watch, executed = given.deployment, given.watch, given.executed
    executor, _ = executor_for(deployment, None, settings, live=True)
    real = executor if executor is not None and not executor.simulated else None
    settled = objects(watch.get("actions"), "verify: 'watch.actions'") if "actions" in watch else executed
    start = _epoch(watch.get("start"))
    if start is None and real is not None:  # reconciling: the window starts once the results are known
        settled, still_unknown = _reconcile_look(settled, real, watch, now, clock, settings)
        if still_unknown is not None:
            return VerifyOutput(look=still_unknown)

    def done(measured: dict[str, Any]) -> VerifyOutput:
        if settled != executed:  # what reconciliation learnt: the record and the status follow it
            measured["actions"] = settled
            measured["deployment_status"] = status_after_verify(settled, given.deployment_status)
        return VerifyOutput(measured)

    measurable = _measurable(deployment, settings)
    if isinstance(measurable, str):
        return done(outcome.inconclusive(measurable))
    config, deployed = measurable
    start = start if start is not None else now
    end = start + config.windows.post_action_s
    if now < end:
        kept = {"actions": settled, "start": start}
        return VerifyOutput(look=waiting(end, kept, "the post-action window", now=now, urgent=False))
    measured = _measure_window(deployment, config, deployed, (start, end), settled, watch, now, settings)
    if isinstance(measured, Look):
        return VerifyOutput(look=measured)
    return done(_gated_on_health(measured, real, deployment))


def _measure_window(
    deployment: dict[str, Any],
    config: ServiceConfig,
    deployed: float,
    span: tuple[float, float],
    executed: list[dict[str, Any]],
    watch: dict[str, Any],
    now: float,
    settings: Settings,
) -> dict[str, Any] | Look:
    """The measured document of the post-action window ``span``, or verify's next look while
    the source fails (up to ``live_telemetry_grace_s``, then inconclusive, saying since when)."""
    start, end = span
    windows = config.windows
    metrics_only = replace(config, logs=None)
    base_start, base_end = known_good_window(executed) or (deployed - windows.baseline_s, deployed)
    baseline_span = (format_ts(base_start), format_ts(base_end))
    window_span = (format_ts(start), format_ts(end))
    try:
        source = build_source(config.metrics, session=http_session())
        step = _step_s(source, max(windows.baseline_s, windows.post_action_s))
        before = build_snapshot(metrics_only, deployment, base_start, base_end, step_s=step, source=source)
        after = build_snapshot(metrics_only, deployment, start, end, step_s=step, source=source)
    except TelemetryError as exc:
        lost_since = _epoch(watch.get("lost_since")) or now
        give_up = lost_since + max(settings.live_telemetry_grace_s, 0.0)
        since = format_ts(lost_since)
        if now < give_up:
            return waiting(
                min(now + settings.live_poll_s, give_up),
                {"actions": executed, "start": start, "lost_since": lost_since},
                f"telemetry to come back (failing since {since})",
                now=now,
                urgent=False,
            )
        why = f"could not read the post-action window: {exc} (telemetry lost since {since})"
        return outcome.inconclusive(why, window=window_span, baseline=baseline_span)
    dep = before.snapshot["deployment"]
    decisive = sorted({str(m) for a in executed for m in (a.get("watch") or []) if isinstance(m, str)})
    cut = baseline_span[1] if base_end != deployed else dep["deployed_at"]
    return outcome.judge_recovery(
        dep,
        outcome.split_baseline(before.snapshot["metrics"], cut),
        after.snapshot["metrics"],
        window_start=window_span[0],
        window_end=window_span[1],
        baseline_start=baseline_span[0],
        baseline_end=baseline_span[1],
        decisive=decisive,
        evidence=(before.snapshot.get("evidence"), after.snapshot.get("evidence")),
    )


def known_good_window(executed: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The measured window of the known-good version a rollback went to (the revision history's
    evidence, carried by the target), when it is one to compare with."""
    for action in executed:
        target = action.get("target") if isinstance(action.get("target"), dict) else {}
        span = target.get("baseline") if isinstance(target.get("baseline"), dict) else {}
        if action.get("name") != ROLLBACK or action.get("status") != DONE or not span.get("start"):
            continue
        try:
            start, end = to_epoch(str(span["start"])), to_epoch(str(span.get("end")))
        except (ValueError, TypeError):
            continue
        if end - start >= 5:
            return start, end
    return None


def is_approved(approval: dict[str, Any] | None) -> bool:
    """Only an explicit yes approves: JSON true, or "true" from a form-encoded Kestra resume.
    Anything else (false, null, missing, garbage) is a rejection."""
    if not approval:
        return False
    value = approval.get("approved")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _expired(approval: dict[str, Any] | None) -> bool:
    return bool(approval) and (
        approval.get("status") == "expired" or approval.get("approver") == TIMEOUT_ACTOR
    )


def _superseded(approval: Mapping[str, Any] | None) -> bool:
    """The approval service closed the approval because the service moved past the decision."""
    return bool(approval) and (approval or {}).get("approver") == SUPERSEDED_ACTOR


def approval_status(plan: dict[str, Any], approval: dict[str, Any] | None) -> str:
    if plan.get("needs_approval") or plan.get("approval"):
        if approval is None:
            return "rejected"
        if _expired(approval):
            return "expired"
        if _superseded(approval):
            return "superseded"
        return "approved" if is_approved(approval) else "rejected"
    return "auto" if plan.get("auto") else "not_required"


def _expected(scenario: dict[str, Any] | None, decision: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """(the scenario's expected verdict, ``{"verdict", "matches"}`` or None outside scenarios)."""
    expected_verdict = scenario.get("expected_verdict") if scenario else None
    if not expected_verdict:
        return expected_verdict, None
    return expected_verdict, {
        "verdict": expected_verdict,
        "matches": decision.get("verdict") == expected_verdict,
    }


def _recorded_simulated(
    scenario: dict[str, Any] | None, measured: dict[str, Any] | None, executed: list[dict[str, Any]]
) -> bool:
    """A recorded scenario, a simulated measurement or any simulated action: the record says so."""
    return (
        scenario is not None
        or bool(measured and measured.get("simulated") is True)
        or any(a.get("simulated") is True for a in executed)
    )


def _recorded_status(given: RecordInput) -> str:
    """The deployment's status: as verify reconciled it, else as the input says, else from the results."""
    return (
        (given.measured or {}).get("deployment_status")
        or given.deployment_status
        or deployment_status(given.decision.get("verdict"), given.executed, given.approval).value
    )


def _approvers(approval: dict[str, Any] | None) -> list[str]:
    """Who approved (the approver field lists them, comma-separated); nobody when it expired."""
    if not approval or not approval.get("approver") or _expired(approval):
        return []
    return [p.strip() for p in str(approval["approver"]).split(",") if p.strip()]


def _incident_part(given: RecordInput) -> dict[str, Any]:
    """For an incident run, which alert started it and how its severity routed it; else nothing."""
    if not given.incident:
        return {}
    keys = ("id", "alertname", "severity", "starts_at", "fingerprint")
    part = {key: given.incident.get(key) for key in keys}
    if given.routing:
        part["route"] = given.routing.get("route")
    return {"incident": part}


def record(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The outcome record kept for the Learning page and the training export.

    ``measured`` is verify's measurement (optional); ``outcome.held`` comes from it (see
    :func:`console.loop.outcome.decision_held`), never from a scenario's expected verdict, which
    is kept apart in ``expected`` (``{"verdict", "matches"}``, null outside scenarios)."""
    given = RecordInput.from_dict(data)
    snapshot, decision, measured, executed = given.snapshot, given.decision, given.measured, given.executed
    scenario = snapshot.get("scenario") if isinstance(snapshot.get("scenario"), dict) else None
    expected_verdict, expected = _expected(scenario, decision)
    measured_status = measured.get("status") if measured else None
    outcome_part = {
        "deployment_status": _recorded_status(given),
        "measured_status": measured_status,
        "held": outcome.decision_held(decision.get("verdict"), executed, measured_status),
        "simulated": _recorded_simulated(scenario, measured, executed),
    }
    approval_part = {
        "status": approval_status(given.plan, given.approval),
        "approvers": _approvers(given.approval),
        "comment": (given.approval or {}).get("comment"),
    }
    return RecordOutput(
        {
            "execution_id": given.execution_id,
            "deployment": snapshot.get("deployment"),
            "scenario": {"id": scenario.get("id"), "expected_verdict": expected_verdict}
            if scenario
            else None,
            "decision": decision,
            "plan": given.plan,
            "approval": approval_part,
            "executed": executed,
            "measured": measured,
            "expected": expected,
            "outcome": {**outcome_part, "category": effectiveness.root_cause_category(decision)},
            **_incident_part(given),
        }
    ).to_dict()


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "collect": collect,
    "analyze": analyze,
    "summarize": summarize,
    "decide": decide,
    "execute": execute,
    "verify": verify,
    "record": record,
}


def run_step(name: str, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    try:
        step = STEPS[name]
    except KeyError:
        raise StepError(f"unknown step {name!r} (one of: {', '.join(STEP_TASKS)})") from None
    return step(data, settings)
