"""One lane of the unseen service: the service process (a deploy restarts it with another version's
behaviour), its load, Debian's Prometheus scraping it every second, and a services file that
configures it as a new user would: ``profile: auto``, a selector, a memory limit.

    lane = UnseenLane.start(tmp_path / "lane")
    try:
        lane.wait_steady()                         # a whole baseline of the running version
        record = lane.deploy("v2", {"errors": {"/api/cart": 0.25}})
        outcome = lane.judge(record)               # the loop's collect (watch) and analyze
    finally:
        lane.stop()

Everything binds 127.0.0.1 on ports the OS picked; every file lives under the lane's directory.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from livestack.processes import PrometheusProcess, free_port, start_prometheus
from livestack.stack import _terminate as terminate
from livestack.stack import instant_query
from livestack.unseen.app import HANDLERS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICE = "shop-api"
JOB = "shop-api"
MB = 1024 * 1024


def services_yaml(
    prom_url: str,
    *,
    baseline_s: float,
    verify_s: float,
    memory_limit: int,
    prometheus_extra: str = "",
    extra: str = "",
) -> str:
    """The services file: three lines for the service itself (url, profile auto with a selector,
    a memory limit), plus the windows of a test (``prometheus_extra``: more keys of the section)."""
    more = f", {prometheus_extra}" if prometheus_extra else ""
    return (
        "services:\n"
        f"  {SERVICE}:\n"
        f"    windows: {{baseline_s: {baseline_s:g}, verify_s: {verify_s:g}, post_action_s: 10}}\n"
        f"    prometheus: {{url: '{prom_url}', profile: auto, selector: 'job=\"{JOB}\"', "
        f"scrape_interval_s: 1, memory_limit_bytes: {memory_limit}{more}}}\n" + extra
    )


class Load:
    """A steady ``rps`` of GETs spread evenly over the five handlers (requests that fail to connect
    during a restart are simply lost, as a real client's would be)."""

    def __init__(self, base_url: str, rps: float = 20.0, workers: int = 12) -> None:
        self.base_url = base_url
        self.rps = rps
        self.jobs: queue.Queue[str | None] = queue.Queue(maxsize=200)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        self.threads.append(threading.Thread(target=self._tick, daemon=True))
        for thread in self.threads:
            thread.start()

    def _tick(self) -> None:
        handlers = itertools.cycle(HANDLERS)
        interval = 1.0 / self.rps
        due = time.monotonic()
        while not self.stopping.is_set():
            due += interval
            with contextlib.suppress(queue.Full):
                self.jobs.put_nowait(next(handlers))
            time.sleep(max(0.0, due - time.monotonic()))

    def _work(self) -> None:
        # http.client, one kept-alive connection per worker: a GET costs a fifth of the CPU it costs
        # through requests, and this runs in the test's process beside the loop it measures
        target = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=5)
        while True:
            path = self.jobs.get()
            if path is None or self.stopping.is_set():
                conn.close()
                return
            try:
                conn.request("GET", path)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn.close()  # the next request connects again

    def stop(self) -> None:
        self.stopping.set()
        for _ in self.threads:
            with contextlib.suppress(queue.Full):
                self.jobs.put_nowait(None)
        for thread in self.threads:
            thread.join(timeout=6)


@dataclass
class UnseenLane:
    workdir: Path
    port: int
    prom: PrometheusProcess
    services_file: Path
    baseline_s: float
    verify_s: float
    rps: float
    targets: dict[str, list[str]] = field(default_factory=dict)
    load: Load | None = None
    proc: subprocess.Popen[bytes] | None = None
    version: str | None = None
    started_at: float = 0.0
    """When the running version's process was started (Unix seconds)."""
    log_files: list[Any] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        baseline_s: float = 30.0,
        verify_s: float = 45.0,
        rps: float = 20.0,
        memory_limit: int = 256 * MB,
        services_extra: str = "",
        prometheus_extra: str = "",
        version: str = "v1",
        behaviour: dict[str, Any] | None = None,
        extra_targets: dict[str, list[str]] | None = None,
    ) -> UnseenLane:
        """Prometheus first (its first scrape comes ~5 s after it is ready), then the service at
        ``version`` and the load."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        targets = {JOB: [f"127.0.0.1:{port}"], **(extra_targets or {})}
        prom = start_prometheus(workdir / "prometheus", targets, rule_files=())
        services = workdir / "services.yaml"
        services.write_text(
            services_yaml(prom.url, baseline_s=baseline_s, verify_s=verify_s, memory_limit=memory_limit,
                          prometheus_extra=prometheus_extra, extra=services_extra),
            encoding="utf-8",
        )  # fmt: skip
        lane = cls(workdir, port, prom, services, baseline_s, verify_s, rps, targets)
        try:
            lane._run(version, behaviour or {})
            lane.load = Load(f"http://127.0.0.1:{port}", rps)
        except BaseException:
            lane.stop()
            raise
        return lane

    # -- the service ------------------------------------------------------------------------------------

    def _run(self, version: str, behaviour: dict[str, Any]) -> None:
        log = (self.workdir / f"service-{version}.log").open("ab")
        self.log_files.append(log)
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livestack.unseen.app", "--port", str(self.port), "--version", version,
             "--behaviour", json.dumps(behaviour)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the unseen service exited with code {self.proc.returncode}")
            with contextlib.suppress(requests.RequestException, ValueError):
                if requests.get(f"http://127.0.0.1:{self.port}/", timeout=1).json().get("version") == version:
                    self.version = version
                    return
            time.sleep(0.05)
        raise RuntimeError("the unseen service did not answer within 20 s")

    def _halt(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 10)

    def deploy(
        self, version: str, behaviour: dict[str, Any] | None = None, by: str = "bench"
    ) -> dict[str, Any]:
        """Replace the running process with ``version`` (a rolling deploy of one instance); the
        deploy's record as a deployer would announce it."""
        previous = self.version
        self._halt()
        at = time.time()
        self._run(version, behaviour or {})
        return {
            "id": f"{SERVICE}-{version}-{int(at * 1000)}",
            "service": SERVICE,
            "version": version,
            "previous_version": previous,
            "deployed_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
            "deployed_by": by,
        }

    # -- Prometheus -------------------------------------------------------------------------------------

    def query(self, promql: str) -> float | None:
        return instant_query(self.prom.url, promql)

    def outage(self, seconds: float) -> tuple[float, float]:
        """Stop Prometheus for ``seconds`` (a fault to inject, not a wait), then start it again on the
        same port and data; returns when it stopped and when it answers again. Its first scrape
        after that comes on its next target tick (about 5 s later)."""
        stopped = time.time()
        self.prom.stop()
        time.sleep(seconds)
        self.prom = start_prometheus(
            self.workdir / "prometheus", self.targets, port=self.prom.port, rule_files=(),
            storage_dir=self.prom.storage_dir,
        )  # fmt: skip
        return stopped, time.time()

    def wait_steady(self, timeout: float = 120.0) -> float:
        """Until Prometheus holds a whole baseline of the running version alone: a real scrape of it
        for (nearly) every second of the last ``baseline_s``, none failed, and every sample's process
        start time that of the version started last (so no sample of the one it replaced). Returns
        the seconds waited."""
        began = time.monotonic()
        self.wait_age(self.baseline_s, timeout=timeout)
        return time.monotonic() - began

    def wait_age(self, seconds: float, timeout: float = 120.0) -> None:
        """Until Prometheus holds ``seconds`` of real scrapes of the running version alone."""
        deadline = time.monotonic() + timeout
        sel = f'job="{JOB}"'
        span = f"{seconds:g}s"
        while time.monotonic() < deadline:
            scrapes = self.query(f"count_over_time(up{{{sel}}}[{span}])")
            failed = self.query(f"count_over_time((up{{{sel}}} == 0)[{span}:1s])")
            oldest = self.query(f"min_over_time(process_start_time_seconds{{{sel}}}[{span}])")
            if (
                scrapes is not None
                and scrapes >= seconds - 1
                and not failed
                and oldest is not None
                and oldest >= self.started_at - 2
            ):
                return
            time.sleep(0.25)
        raise TimeoutError(f"no {seconds:g} s of the running version in Prometheus within {timeout:g} s")

    def wait_scrapes(self, count: int, since: float, timeout: float = 60.0, job: str = JOB) -> None:
        """Until Prometheus holds ``count`` real scrapes of the service after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            span = max(1, int(time.time() - since))
            got = self.query(f'count_over_time(up{{job="{job}"}}[{span}s])')
            if got is not None and got >= count:
                return
            time.sleep(0.2)
        raise TimeoutError(f"Prometheus did not hold {count} scrapes within {timeout:g} s")

    # -- the loop -----------------------------------------------------------------------------------------

    def settings(self, data_dir: Path | None = None, poll_s: float = 1.0) -> Any:
        from console.settings import Settings

        return Settings(
            data_dir=data_dir or self.workdir / "data", services_file=self.services_file, live_poll_s=poll_s
        )

    def judge(self, record: dict[str, Any], settings: Any = None) -> dict[str, Any]:
        """The loop's collect (it watches the window, deciding early when it can) and analyze.
        Each collect is one look: until it is done, wait until the time it gives and look again
        with the watch it returned, as the engine does."""
        from console.loop import steps

        settings = settings or self.settings()
        collected = steps.run_looks(steps.collect, {"deployment": record, "source": "bench"}, settings)
        decision = steps.analyze({"snapshot": collected["snapshot"]}, settings)["decision"]
        return {"collect": collected, "decision": decision}

    def stop(self) -> None:
        """The load, the service, Prometheus; each even if another fails."""
        try:
            if self.load is not None:
                self.load.stop()
        finally:
            try:
                self._halt()
            finally:
                self.prom.stop()
                for log in self.log_files:
                    log.close()
