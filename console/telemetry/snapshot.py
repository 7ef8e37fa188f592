"""Build a snapshot document (console/domain/schema/snapshot.schema.json) for one deployment from the
service's configured sources. Never any mock data: no source, no snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import requests

from console.settings import Settings
from console.telemetry.config import JsonlLogsConfig, LogsConfig, ServiceConfig, service_config
from console.telemetry.errors import InvalidDeployment, NoSourceConfigured
from console.telemetry.logs import JsonlLogSource, LogsResult, LokiSource
from console.telemetry.registry import build_source
from console.telemetry.source import MetricSource
from console.telemetry.times import Instant, format_ts, to_epoch

LogSource = JsonlLogSource | LokiSource


@dataclass(frozen=True)
class CollectedSnapshot:
    snapshot: dict[str, Any]
    """``{"deployment", "metrics", "logs"}`` in the snapshot format."""
    notes: list[str]
    """What was missing, dropped or cut, one line each."""
    queries: dict[str, str]
    """What was read per metric (empty without a metric source)."""
    links: dict[str, str]
    """Graph link per metric."""
    step_s: float | None
    start: str
    end: str


def make_log_source(
    config: LogsConfig, env: Mapping[str, str] | None = None, session: requests.Session | None = None
) -> LogSource:
    if isinstance(config, JsonlLogsConfig):
        return JsonlLogSource.from_config(config)
    return LokiSource.from_config(config, env, session)


def _deployment(service: ServiceConfig, deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot's deployment block. Accepts the deployer's record (``id``, ``by``, ``at``)
    and its announcement (``deployment_id``, ``deployed_by``, ``deployed_at``) as well."""

    def pick(*keys: str) -> Any:
        return next((deployment[k] for k in keys if deployment.get(k) not in (None, "")), None)

    named = pick("service")
    if named is not None and named != service.name:
        raise InvalidDeployment(
            f"deployment.service {named!r} is not the configured service {service.name!r}"
        )
    dep_id, version, deployed_at = pick("id", "deployment_id"), pick("version"), pick("deployed_at", "at")
    for key, value in (("id", dep_id), ("version", version), ("deployed_at", deployed_at)):
        if value is None:
            raise InvalidDeployment(f"deployment.{key}: missing (needed to build the snapshot)")
    try:
        deployed = format_ts(to_epoch(deployed_at))
    except (ValueError, TypeError):
        raise InvalidDeployment(f"deployment.deployed_at: {deployed_at!r} is not a timestamp") from None
    return {
        "id": str(dep_id),
        "service": service.name,
        "version": str(version),
        "previous_version": pick("previous_version"),
        "environment": str(pick("environment") or service.environment),
        "deployed_at": deployed,
        "deployed_by": pick("deployed_by", "by"),
    }


def _read_logs(source: LogSource, start: float, end: float, deployed_at: float) -> LogsResult:
    """The window's logs; when the deploy falls inside it, half the line budget goes to each side
    (the part before gets at most half, the part after the rest), so a chatty baseline cannot
    crowd out the lines after the deploy."""
    budget = source.max_lines
    if not start < deployed_at <= end:
        return source.read(start, end)
    before = source.read(start, deployed_at, max_lines=budget // 2, include_end=False)
    after = source.read(deployed_at, end, max_lines=budget - len(before.records))
    return LogsResult(
        records=before.records + after.records,
        notes=[n + " (before the deploy)" if n.startswith("logs: cut") else n for n in before.notes]
        + after.notes,
        cut=before.cut or after.cut,
        malformed=before.malformed + after.malformed,
    )


def build_snapshot(
    service: ServiceConfig,
    deployment: Mapping[str, Any],
    start: Instant,
    end: Instant,
    *,
    now: Instant | None = None,
    step_s: float | None = None,
    env: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
    source: MetricSource | None = None,
) -> CollectedSnapshot:
    """The snapshot of ``deployment`` over [start, end] from the service's sources.

    ``end`` past ``now`` is cut to ``now``. ``step_s`` None chooses the metrics' step from the
    window. ``source`` reuses a metric source built already (a run's polls), else one is built from
    the service's section. A source that fails raises its one-line error (a partial snapshot could
    decide on missing evidence); a metric or log line that is merely absent is a note.
    """
    if not service.has_telemetry:
        raise NoSourceConfigured(
            f"no telemetry source configured for service {service.name!r}; add a prometheus or logs "
            "section to it in CONSOLE_SERVICES_FILE"
        )
    dep = _deployment(service, deployment)
    start_s, end_s = to_epoch(start), to_epoch(end)
    notes: list[str] = []
    if now is not None and end_s > to_epoch(now):
        notes.append(f"window cut at now ({format_ts(to_epoch(now))}) instead of {format_ts(end_s)}")
        end_s = to_epoch(now)
    if end_s <= start_s:
        raise InvalidDeployment(
            f"empty window: start {format_ts(start_s)} is not before end {format_ts(end_s)}"
        )
    own_session = session is None
    session = session or requests.Session()
    try:
        if source is None and service.metrics is not None:
            source = build_source(service.metrics, env, session)
        return _collect(service, dep, start_s, end_s, notes, step_s, env, session, source)
    finally:
        if own_session:
            session.close()


def _collect(
    service: ServiceConfig,
    dep: dict[str, Any],
    start_s: float,
    end_s: float,
    notes: list[str],
    step_s: float | None,
    env: Mapping[str, str] | None,
    session: requests.Session,
    source: MetricSource | None,
) -> CollectedSnapshot:
    metrics: dict[str, list[list[Any]]] = {}
    queries: dict[str, str] = {}
    links: dict[str, str] = {}
    step: float | None = None
    evidence = None
    if source is not None:
        fetched = source.fetch(start_s, end_s, step_s=step_s)
        metrics = {name: [[format_ts(t), v] for t, v in points] for name, points in fetched.metrics.items()}
        notes.extend(fetched.notes)
        queries, links, step = fetched.queries, fetched.links, fetched.step_s
        if fetched.evidence is not None:
            evidence = replace(
                fetched.evidence, objectives=service.objectives, trend_horizon_s=service.trend_horizon_s
            )
    else:
        notes.append("metrics: no Prometheus configured for this service")
    logs: list[dict[str, Any]] = []
    if service.logs is not None:
        result = _read_logs(
            make_log_source(service.logs, env, session), start_s, end_s, to_epoch(dep["deployed_at"])
        )
        logs = result.records
        notes.extend(result.notes)
        if not logs:
            notes.append("logs: no log lines in that window")
    else:
        notes.append("logs: no log source configured for this service")
    document: dict[str, Any] = {"deployment": dep, "metrics": metrics, "logs": logs}
    if evidence is not None:
        document["evidence"] = evidence.to_dict()
    return CollectedSnapshot(document, notes, queries, links, step, format_ts(start_s), format_ts(end_s))


def build_snapshot_for(
    settings: Settings,
    deployment: Mapping[str, Any],
    start: Instant,
    end: Instant,
    *,
    now: Instant | None = None,
    step_s: float | None = None,
) -> CollectedSnapshot:
    """:func:`build_snapshot` for the service the deployment names, looked up in
    ``settings.services_file`` (:class:`NoSourceConfigured` when it is not there)."""
    name = deployment.get("service")
    if not isinstance(name, str) or not name:
        raise InvalidDeployment("deployment.service: missing (which service's sources to read)")
    return build_snapshot(service_config(name, settings), deployment, start, end, now=now, step_s=step_s)
