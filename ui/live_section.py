"""The Scenarios page's Live section: a real service the console acts on (CONSOLE_SERVICES_FILE names
it with a non-simulated executor), its running version, a button per version to deploy it, live
charts from Prometheus with deploy and action markers, and the loop's run on the latest deploy as it
goes. Nothing here is made up: what cannot be read is one line saying why.

A deploy starts from the button's ``on_click`` and runs in a background thread (:class:`DeployJobs`,
one per console process): while a deploy of a service is in flight, or for a moment after it, more
clicks do nothing, so a double click never deploys twice. The thread calls the deployer's
``POST /deploy`` as the signed-in person, then announces the deployer's record through the inbound service
service (:meth:`console.inbound.Inbound.announce`, ``source="console"``) and records who launched
it, so the approval it may ask for names that person and someone else has to approve. A deployer
that announces its deploys itself (``scripts/live.sh`` points it at ``/api/deployments``) announces
the same deployment id: whichever comes first starts the run, the other gets that run's id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

from console.access import signin
from console.access.approvals import launch_source
from console.access.auth import Identity
from console.domain.models import format_time
from console.executors.base import ExecutorConfigError
from console.executors.deployer_api import DeployerClient, DeployerUnavailable
from console.inbound import Inbound
from console.presentation import formatting as fmt
from console.presentation import live_section as view
from console.presentation import tables
from console.runtime import Services
from console.settings import Settings
from console.telemetry import ServiceConfig, TelemetryError, build_source, load_services
from ui import widgets
from ui.identity import current_identity
from ui.services import log, one_line, safe

REFRESH_S = 2.0
"""How often the Live section re-reads the deployer, Prometheus and the run."""
MIN_REDEPLOY_S = 3.0
"""After a deploy of a service finished, further clicks are ignored this long (a double click)."""
WINDOWS = {"3 min": 180, "10 min": 600, "30 min": 1800}
ACTION_LOOKBACK_S = 2 * 3600
"""Actions are looked for in runs launched up to this long before the chart's window."""
START_HINT = (
    "No live service is configured: `./scripts/live.sh` starts one on this machine (the demo service "
    "with its load, Prometheus, and this console pointed at them), then deploy its versions here."
)


# -- which services are live ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveTargets:
    services: list[ServiceConfig]
    error: str | None = None
    """Why the services file cannot be used (one line), else None."""


@st.cache_data(ttl=5, show_spinner=False)
def _load_targets(path: str, mtime_ns: int, _settings: Settings) -> LiveTargets:
    try:
        config = load_services(Path(path), _settings)
    except TelemetryError as exc:
        return LiveTargets([], one_line(exc))
    return LiveTargets(view.live_services(config))


def live_targets(settings: Settings) -> LiveTargets:
    """The live services of CONSOLE_SERVICES_FILE (none when it is unset or absent)."""
    path = settings.services_file
    if path is None:
        return LiveTargets([])
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return LiveTargets([])
    except OSError as exc:
        return LiveTargets([], f"CONSOLE_SERVICES_FILE cannot be read: {type(exc).__name__}")
    return _load_targets(str(path), mtime, settings)


def deployer_of(service: ServiceConfig) -> DeployerClient | None:
    """The deployer client of a ``demo-service`` executor; None for other executor types."""
    if view.executor_type(service) != view.DEPLOYER_EXECUTOR or service.executor is None:
        return None
    return DeployerClient.from_executor_config(service.executor, f"services.{service.name}.executor")


# -- deploys in the background -------------------------------------------------------------------------


@dataclass
class DeployJob:
    service: str
    version: str
    by: str
    started: float = field(default_factory=time.monotonic)
    state: str = "deploying"
    """``deploying``, ``launched`` or ``failed``."""
    record: dict[str, Any] | None = None
    execution_id: str | None = None
    error: str | None = None
    finished: float | None = None


RecordLaunch = Callable[[str, Identity], None]
Announce = Callable[[dict[str, Any], Identity], str]
"""Starts the loop on a deployer's record (or finds the run its announcement started): its id."""


def announcer(inbound: Inbound) -> Announce:
    def announce(record: dict[str, Any], who: Identity) -> str:
        outcome = inbound.announce(
            record, source="console", announced_by=who.name, requester_source=launch_source(who)
        )
        if not outcome.execution_id:
            raise RuntimeError(outcome.reason or f"the announcement was {outcome.status}")
        return outcome.execution_id

    return announce


class DeployJobs:
    """The deploys this console process started, one slot per service."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, DeployJob] = {}

    def get(self, service: str) -> DeployJob | None:
        with self.lock:
            return self.jobs.get(service)

    def start(
        self,
        service: str,
        version: str,
        who: Identity,
        client: DeployerClient,
        announce: Announce,
        record_launch: RecordLaunch | None,
    ) -> str | None:
        """Start a deploy of ``version`` as ``who``; None when started, else why not (one line)."""
        with self.lock:
            job = self.jobs.get(service)
            if job is not None:
                if job.state == "deploying":
                    return f"A deploy of {job.version} to {service} is in progress; not deployed again."
                if job.finished is not None and time.monotonic() - job.finished < MIN_REDEPLOY_S:
                    return f"{job.version} was just deployed to {service}; not deployed again."
            job = DeployJob(service, version, who.name)
            self.jobs[service] = job
        threading.Thread(
            target=self._run,
            args=(job, who, client, announce, record_launch),
            name=f"deploy-{service}",
            daemon=True,
        ).start()
        return None

    def _run(
        self,
        job: DeployJob,
        who: Identity,
        client: DeployerClient,
        announce: Announce,
        record_launch: RecordLaunch | None,
    ) -> None:
        try:
            record = client.deploy(
                job.version, by=who.name, reason="deployed from the console's Live section"
            )
        except DeployerUnavailable as exc:
            job.error = f"{job.version} was not deployed: {exc}"
            job.state = "failed"
        except Exception as exc:  # never a traceback on the page: one line, the rest in the log
            log.exception("deploy failed")
            job.error = f"{job.version} was not deployed: {type(exc).__name__}: {one_line(exc)}"
            job.state = "failed"
        else:
            job.record = record
            try:
                job.execution_id = announce(record, who)
            except Exception as exc:
                log.exception("launch after a deploy failed")
                job.error = f"{job.version} is deployed, but the loop could not start: {one_line(exc)}"
                job.state = "failed"
            else:
                if record_launch is not None:
                    try:
                        record_launch(job.execution_id, who)
                    except Exception:
                        log.exception("could not record who launched %s", job.execution_id)
                job.state = "launched"
        finally:
            job.finished = time.monotonic()
            st.cache_data.clear()


@st.cache_resource(show_spinner=False)
def deploy_jobs() -> DeployJobs:
    return DeployJobs()


def request_deploy(services: Services, service: ServiceConfig, version: str) -> None:
    """on_click of a version's Deploy button: checks who is signed in, then starts the deploy."""
    key = f"live_notice_{service.name}"
    who = current_identity()
    policy = signin.sign_in(services.settings)
    if who is None:
        st.session_state[key] = "Sign in to deploy."
        return
    if not who.can_approve:
        st.session_state[key] = (
            f"{who.name} has the {who.role.value} role: deploying needs approver or admin."
        )
        return
    if who.source == "demo" and not policy.demo_allowed:
        st.session_state[key] = "A demo identity cannot deploy to a live service: sign in."
        return
    if services.backend is None or services.inbound is None:
        st.session_state[key] = services.error or "The engine is not available."
        return
    try:
        client = deployer_of(service)
    except ExecutorConfigError as exc:
        st.session_state[key] = one_line(exc)
        return
    if client is None:
        st.session_state[key] = f"{service.name} is deployed by its own pipeline, not from the console."
        return
    record_launch = services.approvals.record_launch if services.approvals is not None else None
    announce = announcer(services.inbound)
    refused = deploy_jobs().start(service.name, version, who, client, announce, record_launch)
    if refused:
        st.session_state[key] = refused
    else:
        st.session_state.pop(key, None)


# -- reads ---------------------------------------------------------------------------------------------


@dataclass
class DeployerView:
    status: dict[str, Any] | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@st.cache_data(ttl=30, show_spinner=False)
def _versions(_client: DeployerClient, url: str) -> list[dict[str, Any]]:
    return _client.versions()


def read_deployer(client: DeployerClient) -> DeployerView:
    """Status, versions and recent switches; a deployer that is down gives one line, not an error."""
    out = DeployerView()
    try:
        out.status = client.status()
        out.versions = _versions(client, client.url)
        out.records = client.deployments(limit=20)
    except DeployerUnavailable as exc:
        out.error = str(exc)
    return out


def _iso(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, UTC))


# -- drawing -------------------------------------------------------------------------------------------


def render_live_hint() -> None:
    st.subheader(":material/sensors: Live")
    st.info(START_HINT, icon=":material/sensors_off:")


def render_live_section(services: Services) -> bool:
    """The Live section when a live service is configured; False (nothing drawn) when none is."""
    targets = live_targets(services.settings)
    if targets.error:
        st.subheader(":material/sensors: Live")
        st.error(fmt.md_escape(f"Live services: {targets.error}"), icon=":material/block:")
        return True
    if not targets.services:
        return False
    st.subheader(
        ":material/sensors: Live",
        help="A real service on this machine: its deployer, Prometheus scraping it, and the loop acting "
        "through its executor. Nothing here is simulated.",
    )
    for service in targets.services:
        with st.container(border=True, key=f"live_{service.name}"):
            live_panel(services, service)
    return True


@st.fragment(run_every=REFRESH_S)
def live_panel(services: Services, service: ServiceConfig) -> None:
    try:
        client = deployer_of(service)
    except ExecutorConfigError as exc:
        client = None
        st.error(fmt.md_escape(one_line(exc)), icon=":material/block:")
    deployer = read_deployer(client) if client is not None else None
    now = time.time()
    window = WINDOWS.get(st.session_state.get(f"live_window_{service.name}") or "", WINDOWS["3 min"])
    records = deployer.records if deployer is not None else []
    left, right = st.columns([3, 2], gap="large")
    with left:
        _status_and_buttons(services, service, client, deployer)
    with right:
        _latest_run(services, service)
    _charts(services, service, records, now - window, now)  # four side by side, under both


def _status_and_buttons(
    services: Services, service: ServiceConfig, client: DeployerClient | None, deployer: DeployerView | None
) -> None:
    name = service.name
    esc = fmt.md_escape
    title = f"**{esc(name)}** ({esc(service.environment)})"
    notice = st.session_state.pop(f"live_notice_{name}", None)
    if client is None:
        st.markdown(title)
        st.caption(
            esc(
                f"{name} acts through the {view.executor_type(service)} executor; deploys come from its own "
                "pipeline, so there are no deploy buttons here."
            )
        )
        return
    assert deployer is not None
    status = deployer.status or {}
    running = status.get("version")
    if deployer.status:
        state = "deploying…" if status.get("deploying") else "ready" if status.get("ready") else "not ready"
        restarts = int(status.get("restarts") or 0)
        st.markdown(
            f"{title} runs **{esc(running or '—')}** · previous "
            f"{esc(status.get('previous_version') or '—')} · instance {state}"
            + (f" · {restarts} crash restart(s)" if restarts else "")
        )
    else:
        st.markdown(title)
    if deployer.error:
        st.warning(esc(f"Deployer: {deployer.error}"), icon=":material/cloud_off:")
    if notice:
        st.warning(esc(notice), icon=":material/info:")
    job = deploy_jobs().get(name)
    if job is not None:
        _job_line(job)
    if not deployer.versions:
        return
    with st.container(horizontal=True, gap="small", key=f"versions_{name}"):
        for item in deployer.versions:
            version = str(item["version"])
            st.button(
                version,
                key=f"deploy_{name}_{version}",
                on_click=request_deploy,
                args=(services, service, version),
                help=f"Deploy {version}: {item.get('description') or 'no description'}",
                icon=":material/rocket_launch:",
                disabled=version == running,
            )
    who = current_identity()
    if who is None or not who.can_approve:
        st.caption("Sign in as an approver or admin to deploy.")
    else:
        st.caption(
            f"A button deploys that version through the deployer, as {esc(who.name)} (hover: what it does)."
        )


JOB_SHOWN_S = 8.0
"""How long "deployed; the loop starts" stays after a deploy (then the run below tells the rest)."""


def _job_line(job: DeployJob) -> None:
    text = fmt.md_escape
    if job.state == "deploying":
        st.markdown(text(f"Deploying {job.version} as {job.by}…"))
    elif job.state == "failed":
        st.error(text(job.error or f"{job.version} was not deployed."), icon=":material/error:")
    elif job.finished is not None and time.monotonic() - job.finished < JOB_SHOWN_S:
        done = text(f"{job.version} deployed by {job.by}; the loop starts on it.")
        st.markdown(f":green[:material/check_circle:] {done}")


def _charts(
    services: Services, service: ServiceConfig, records: list[dict[str, Any]], start: float, end: float
) -> None:
    name = service.name
    with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
        st.markdown(
            "**Live metrics** · Prometheus, every 2 s",
            width="content",
            help="Deploys and rollbacks are dashed lines labelled at the top; the loop's actions are "
            "dotted lines labelled at the bottom (hover a label for the whole text).",
        )
        st.segmented_control(
            "Window", list(WINDOWS), default="3 min", key=f"live_window_{name}", label_visibility="collapsed"
        )
    if service.metrics is None:
        st.caption(fmt.md_escape(f"{name} has no prometheus section in CONSOLE_SERVICES_FILE: no charts."))
        return
    try:
        source = build_source(service.metrics)
        result = source.fetch(start, end, metrics=view.LIVE_METRICS)
    except TelemetryError as exc:
        st.warning(fmt.md_escape(f"Prometheus: {one_line(exc)}"), icon=":material/cloud_off:")
        return
    markers = view.deployer_markers(records, start, end)
    if services.store is not None:
        actions = safe(
            services.store.actions.on_service,
            name,
            since=_iso(start),
            launched_since=_iso(start - ACTION_LOOKBACK_S),
            default=[],
            what="actions",
        )
        markers += view.action_markers(actions, start, end)
    cols = st.columns(len(view.LIVE_METRICS))
    for i, metric in enumerate(view.LIVE_METRICS):
        with cols[i]:
            figure = view.live_figure(metric, result.metrics.get(metric, []), markers, start, end)
            st.plotly_chart(figure, key=f"live_chart_{name}_{metric}", config={"displayModeBar": False})
            link = result.links.get(metric)
            if link and link.startswith(("http://", "https://")):  # a URL, never a script
                st.link_button(
                    f"{view.live_title(metric)} in Prometheus",
                    link,
                    icon=":material/open_in_new:",
                    type="tertiary",
                )


def _latest_run(services: Services, service: ServiceConfig) -> None:
    store = services.store
    if store is None:
        return
    rows = safe(store.deployments.list, service=service.name, limit=1, default=[], what="runs")
    st.markdown("**The loop on the latest deploy**")
    if not rows:
        st.caption("No run yet: deploy a version and the loop starts on it.")
        return
    render_run(services, rows[0])


def render_run(services: Services, row: dict[str, Any]) -> None:
    """A live run as it goes: the deploy, the steps, the (early) decision, the approval, the
    actions and the measured outcome, all from the store except the steps (the engine's)."""
    esc = fmt.md_escape
    store = services.store
    execution_id = str(row.get("execution_id") or "")
    status = row.get("status")
    waiting = status == "awaiting approval"
    st.markdown(
        f"**{esc(row.get('version'))}** by {esc(row.get('deployed_by'))} · "
        f"{esc(str(row.get('deployed_at') or '')[11:19])} UTC"
        + ("" if waiting else " · " + widgets.badge_md(fmt.status_badge(status)))
    )
    execution = (
        safe(services.backend.get_execution, execution_id, default=None, what="progress")
        if services.backend is not None and execution_id
        else None
    )
    if execution is not None:
        st.markdown(" ".join(widgets.badge_md(tables.step_badge(s)) for s in tables.loop_progress(execution)))
    verdict = row.get("verdict")
    if verdict:
        verification = tables.task_output(execution, "collect", "verification") if execution else None
        early = view.early_text(verification)
        when = early.split(":", 1)[0].replace("Decided ", "decided ") if early else None
        st.markdown(
            f"Decision {widgets.badge_md(fmt.verdict_badge(verdict))} · confidence "
            f"{fmt.format_percent(row.get('confidence'))}" + (f" · {esc(when)}" if when else ""),
            help=esc(early) if early else None,
        )
    elif status == "analyzing":
        st.caption("Watching the verification window: it decides as soon as the evidence is conclusive.")
    if waiting and store is not None:
        approval = safe(store.approvals.for_execution, execution_id, default=None, what="approval")
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.markdown(":orange-badge[:material/pause_circle: Awaiting approval]", width="content")
            if approval is not None:
                st.page_link(
                    "pages/approvals.py",
                    label="Open its approval card",
                    icon=":material/gavel:",
                    query_params={"approval": str(approval["id"])},
                    width="content",
                )
    actions = safe(store.actions.for_execution, execution_id, default=[], what="actions") if store else []
    for action in actions:
        label = action.get("label") or action.get("status")
        mode = action.get("mode")
        st.markdown(
            f":material/bolt: {esc(action.get('name'))}"
            + (f" ({esc(mode)})" if mode else "")
            + f": {esc(label)}"
            + (" · simulated" if action.get("simulated") else "")
        )
    measured = row.get("measured_status")
    if measured:
        record = safe(store.outcomes.record, execution_id, default=None, what="outcome") if store else None
        reason = ((record or {}).get("measured") or {}).get("reason")
        color = {"resolved": "green", "not_resolved": "red"}.get(str(measured), "gray")
        st.markdown(
            f"Measured outcome :{color}-badge[{esc(str(measured).replace('_', ' '))}]"
            + (" · simulated" if row.get("simulated") else " · on Prometheus, after the actions")
        )
        if reason:
            st.caption(esc(reason))
    if execution_id:
        widgets.link_to_execution(execution_id)
