"""One live lane: the demo service (deployer, instance, load), a real Prometheus scraping it every
second, and the embedded engine with its approval service, wired through a services file in the
lane's own directory. Used by the live tests (tests/live/) and benchmarks/bench_live.py.

    lane = LiveLane.start(tmp_path / "lane", token_env="LIVE_TOKEN_A")
    try:
        lane.wait_steady()                          # a full, steady baseline in Prometheus
        record = lane.stack.deploy("v1.2.0-leak", by="alice")
        execution_id = lane.launch(record)          # launch_deployment, as a deployer's announcement would
        ...
    finally:
        lane.stop()                                 # every process, also on failure

Everything binds 127.0.0.1 on ports the OS picked; every file lives under the lane's directory.
The executor's token is read from ``token_env`` (one variable per lane, so lanes in one process can
hold different tokens: the failing-executor test gives its lane a wrong one).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from console.access.approvals import VoteResult
from console.access.auth import Identity, Role
from console.domain.executions import Execution, State
from console.engines.backend import BackendError
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Settings
from demo_service.testing import DemoStack, start_demo_stack
from livestack.processes import PrometheusProcess, missing_reason, start_prometheus
from livestack.stack import instant_query, wait_steady
from tests.waiting import patience

SERVICE = "demo-service"


@dataclass(frozen=True)
class Windows:
    baseline_s: float = 15.0
    verify_s: float = 30.0
    post_action_s: float = 15.0


def services_yaml(
    prom_url: str, stack: DemoStack, windows: Windows, token_env: str, executor_extra: str = ""
) -> str:
    return (
        "services:\n"
        f"  {SERVICE}:\n"
        "    environment: live-demo\n"
        f"    windows: {{baseline_s: {windows.baseline_s:g}, verify_s: {windows.verify_s:g}, "
        f"post_action_s: {windows.post_action_s:g}}}\n"
        f"    prometheus: {{url: '{prom_url}', profile: demo-service, selector: 'service=\"{SERVICE}\"', "
        "scrape_interval_s: 1}\n"
        f"    logs: {{type: jsonl, path: '{stack.log_file}'}}\n"
        f"    executor: {{type: demo-service, url: '{stack.deployer_url}', token_env: {token_env}, "
        f"verify_timeout_s: 15{executor_extra}}}\n"
    )


@dataclass
class LiveLane:
    workdir: Path
    windows: Windows
    stack: DemoStack
    prom: PrometheusProcess
    runtime: EmbeddedRuntime
    token_env: str
    rps: float
    events: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        token_env: str,
        token: str | None = None,
        windows: Windows = Windows(),
        rps: float = 20.0,
        poll_s: float = 2.0,
        executor_extra: str = "",
    ) -> LiveLane:
        """The demo service with load, then Prometheus on its two ports, then the engine.

        ``token`` is what the executor sends (default: the deployer's own, so actions work)."""
        reason = missing_reason("prometheus")
        if reason:
            raise RuntimeError(reason)
        workdir.mkdir(parents=True, exist_ok=True)
        stack = start_demo_stack(workdir / "stack", load_rps=rps)
        prom = None
        try:
            prom = start_prometheus(
                workdir / "prometheus",
                {
                    SERVICE: [f"127.0.0.1:{stack.service_port}"],
                    "deployer": [f"127.0.0.1:{stack.deployer_port}"],
                },
            )
            os.environ[token_env] = stack.token if token is None else token
            services = workdir / "services.yaml"
            services.write_text(
                services_yaml(prom.url, stack, windows, token_env, executor_extra), encoding="utf-8"
            )
            settings = Settings(data_dir=workdir / "data", services_file=services, live_poll_s=poll_s)
            runtime = embedded_runtime(settings, max_workers=2)
        except BaseException:
            if prom is not None:
                prom.stop()
            stack.stop()
            raise
        return cls(workdir, windows, stack, prom, runtime, token_env, rps)

    # -- Prometheus -----------------------------------------------------------------------------------

    def query(self, promql: str) -> float | None:
        """One instant query (:func:`livestack.stack.instant_query`)."""
        return instant_query(self.prom.url, promql)

    def wait_steady(self, timeout: float = 90.0) -> float:
        """Wait until Prometheus holds a whole baseline window of steady, healthy traffic
        (:func:`livestack.stack.wait_steady`). Returns the seconds waited."""
        return wait_steady(self.query, self.windows.baseline_s, self.rps, patience(timeout))

    # -- the loop -------------------------------------------------------------------------------------

    def deploy(self, version: str, by: str = "alice") -> dict[str, Any]:
        record = self.stack.deploy(version, by=by)
        self.events.append((f"deployed {version}", time.time()))
        return record

    def launch(self, record: dict[str, Any]) -> str:
        """The loop on the deployer's record of a deploy, as its announcement would start it."""
        return self.runtime.engine.launch_deployment(record, triggered_by=record["by"], source="deployer")

    def wait(self, execution_id: str, timeout: float = 120.0) -> Execution:
        """Until the execution pauses for a human or ends."""
        return self.runtime.engine.wait(execution_id, timeout=patience(timeout))

    def approve(self, execution_id: str, who: str = "bob", comment: str = "leak confirmed") -> VoteResult:
        """Approve the pending request through the approval service, as ``who`` (an approver)."""
        approval = self.runtime.approvals.for_execution(execution_id)
        if approval is None:
            raise AssertionError(f"execution {execution_id} has no approval request")
        signed_in = Identity(who, Role.APPROVER, source="password")  # a live console has no demo identity
        result = self.runtime.approvals.vote(approval["id"], signed_in, True, comment)
        self.events.append((f"approved by {who}", time.time()))
        return result

    def finish(self, execution_id: str, timeout: float = 120.0) -> Execution:
        execution = self.wait(execution_id, timeout)
        if not execution.state.terminal:
            raise AssertionError(f"execution {execution_id} is {execution.state.value}, not finished")
        return execution

    def serving(self) -> str | None:
        try:
            return requests.get(self.stack.service_url + "/", timeout=2).json().get("version")
        except (requests.RequestException, ValueError, AttributeError):
            return None

    def logs(self, execution_id: str) -> str:
        return "\n".join(e.message for e in self.runtime.engine.execution_logs(execution_id))

    def every_log(self) -> str:
        """Every execution's log, for a failure's message (the failure may come before the test
        learnt its execution's id)."""
        return "\n".join(self.logs(e.id) for e in self.runtime.engine.search_executions().items)

    def stop(self) -> None:
        """The engine (its unfinished executions killed, so no worker keeps waiting on a window),
        Prometheus and the demo stack; each even if another fails."""
        try:
            engine = self.runtime.engine
            for execution in engine.search_executions(
                states=[State.CREATED, State.RUNNING, State.PAUSED]
            ).items:
                with contextlib.suppress(BackendError):  # it ended meanwhile: nothing to stop
                    engine.kill(execution.id, by="test teardown")
            self.runtime.close(wait=True)
        finally:
            try:
                self.prom.stop()
            finally:
                self.stack.stop()
                os.environ.pop(self.token_env, None)


def task_outputs(execution: Execution, task: str) -> dict[str, Any]:
    run = execution.task_run(task)
    return dict(run.outputs) if run is not None and run.state == State.SUCCESS else {}
