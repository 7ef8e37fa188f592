"""Start and stop the demo stack (deployer, its instance, optionally the load) for live tests.

Plain functions, no pytest import, so any test folder can use them::

    stack = start_demo_stack(tmp_path, load_rps=20)
    try:
        stack.deploy("v1.2.0-leak", by="alice")
        ...
    finally:
        stack.stop()

Everything binds 127.0.0.1 on ports the OS picked, and every file lives under ``workdir``.
``stop()`` also kills any instance of this stack that outlived its deployer, so a test leaves no
process behind even when the deployer itself failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _instance_pids(marker: str) -> list[int]:
    """Pids of demo_service.app processes whose command line holds ``marker`` (the stack's log file)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"demo_service.app" in cmdline and marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def metric_samples(text: str, name: str, **labels: str) -> list[float]:
    """Values of the samples called ``name`` whose labels include ``labels``."""
    values = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                values.append(sample.value)
    return values


@dataclass
class DemoStack:
    workdir: Path
    deployer_port: int
    service_port: int
    token: str
    log_file: Path
    state_dir: Path
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    load_proc: subprocess.Popen[bytes] | None = None
    load_rps: float | None = None
    starts: int = 0
    stopped: bool = False
    leftovers: list[int] = field(default_factory=list)

    @property
    def deployer_url(self) -> str:
        return f"http://127.0.0.1:{self.deployer_port}"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def output_file(self) -> Path:
        return self.workdir / "deployer.out"

    # ---- the deployer API ----------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> requests.Response:
        """One API call; ``token=""`` sends none, any other string sends that one."""
        headers = self.headers if token is None else ({"Authorization": f"Bearer {token}"} if token else {})
        return requests.request(method, self.deployer_url + path, json=body, headers=headers, timeout=60)

    def _switch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api("POST", path, body)
        if response.status_code != 200:
            raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text.strip()}")
        return response.json()["deployment"]

    def deploy(
        self,
        version: str,
        by: str = "tester",
        behaviour: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"version": version, "by": by}
        if behaviour is not None:
            body["behaviour"] = behaviour
        if reason is not None:
            body["reason"] = reason
        return self._switch("/deploy", body)

    def rollback(
        self, by: str = "tester", to: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"by": by}
        if to is not None:
            body["to"] = to
        if reason is not None:
            body["reason"] = reason
        return self._switch("/rollback", body)

    def restart(self, by: str = "tester") -> dict[str, Any]:
        return self._switch("/restart", {"by": by})

    def status(self) -> dict[str, Any]:
        response = self.api("GET", "/status")
        response.raise_for_status()
        return response.json()

    def deployments(self, limit: int = 50) -> list[dict[str, Any]]:
        response = self.api("GET", f"/deployments?limit={limit}")
        response.raise_for_status()
        return response.json()["deployments"]

    # ---- what the service shows ----------------------------------------------------------------

    def service_metrics(self) -> str:
        return requests.get(self.service_url + "/metrics", timeout=5).text

    def deployer_metrics(self) -> str:
        return requests.get(self.deployer_url + "/metrics", timeout=5).text

    def metric(self, name: str, source: str = "service", **labels: str) -> float | None:
        """Sum of the matching samples on the service's (or the deployer's) /metrics; None if absent."""
        text = self.service_metrics() if source == "service" else self.deployer_metrics()
        values = metric_samples(text, name, **labels)
        return sum(values) if values else None

    def serving_versions(self) -> list[str]:
        """Versions in ``service_build_info`` of the instance that answered this scrape."""
        families = text_string_to_metric_families(self.service_metrics())
        return [
            s.labels["version"]
            for f in families
            for s in f.samples
            if s.name == "service_build_info" and s.value == 1
        ]

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        lines = []
        for line in self.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                lines.append({"unparsable": line})
        return lines

    def output(self) -> str:
        return self.output_file.read_text(errors="replace") if self.output_file.exists() else ""

    # ---- processes -----------------------------------------------------------------------------

    def start_deployer(self, timeout: float = 20.0) -> None:
        """Start (or start again, keeping the state dir) the deployer; return once its instance is ready."""
        self.starts += 1
        with self.output_file.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "demo_service.deployer", *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=PACKAGE_PARENT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the deployer exited with code {self.proc.returncode}: {self.output().strip()}"
                )
            try:
                health = requests.get(self.deployer_url + "/health", timeout=1).json()
                if health.get("ready"):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the deployer was not ready within {timeout:g} s: {self.output().strip()[-500:]}")

    def stop_deployer(self, timeout: float = 15.0) -> None:
        if self.proc is not None:
            _terminate(self.proc, timeout)

    def start_load(self, rps: float = 20.0, workers: int = 16) -> None:
        if self.load_proc is not None and self.load_proc.poll() is None:
            return
        with (self.workdir / "load.out").open("ab") as out:
            self.load_proc = subprocess.Popen(
                [sys.executable, "-m", "demo_service.load", "--target", self.service_url,
                 "--rps", str(rps), "--workers", str(workers)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=PACKAGE_PARENT,
            )  # fmt: skip

    def stop_load(self) -> str:
        """Stop the load generator; return its summary line."""
        if self.load_proc is not None:
            _terminate(self.load_proc, 10)
            self.load_proc = None
        path = self.workdir / "load.out"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return lines[-1] if lines else ""

    def instance_pids(self) -> list[int]:
        return _instance_pids(str(self.log_file))

    def stop(self) -> None:
        """Stop load and deployer (which stops its instances); kill any instance left over."""
        if self.stopped:
            return
        self.stopped = True
        self.stop_load()
        self.stop_deployer()
        deadline = time.monotonic() + 5
        while self.instance_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Anything still here outlived its deployer: a bug the tests can see in ``leftovers``.
        self.leftovers = self.instance_pids()
        for pid in self.leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> DemoStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


PORT_ATTEMPTS = 3
"""Starts of the deployer on newly picked ports when one it was given is taken before it binds it."""


def start_demo_stack(
    workdir: Path,
    *,
    initial_version: str = "v1.0.0",
    load_rps: float | None = None,
    notify_urls: tuple[str, ...] | list[str] = (),
    notify_token_env: str | None = None,
    env: dict[str, str] | None = None,
    versions_file: Path | None = None,
    extra_args: tuple[str, ...] | list[str] = (),
    token: str | None = None,
    deployer_port: int = 0,
    service_port: int = 0,
) -> DemoStack:
    """Start the deployer on loopback ports (0: one the OS picks) with its files under ``workdir``;
    optionally load.

    ``env`` adds environment variables (e.g. the one ``notify_token_env`` names). The returned
    handle has ``deployer_url``, ``service_url``, ``log_file``, ``token``, ``headers`` and ``stop()``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    token = token or secrets.token_urlsafe(24)
    # a port the OS picked is free when picked, not when the deployer binds it: another process may
    # take it in between, and then the deployer starts again on newly picked ports
    attempts_left = PORT_ATTEMPTS if not (deployer_port and service_port) else 1
    while True:
        attempts_left -= 1
        try:
            return _start_demo_stack(
                workdir, initial_version, load_rps, notify_urls, notify_token_env, env, versions_file,
                extra_args, token, deployer_port or free_port(), service_port or free_port(),
            )  # fmt: skip
        except RuntimeError as exc:
            if not attempts_left or "Address already in use" not in str(exc):
                raise


def _start_demo_stack(
    workdir: Path,
    initial_version: str,
    load_rps: float | None,
    notify_urls: tuple[str, ...] | list[str],
    notify_token_env: str | None,
    env: dict[str, str] | None,
    versions_file: Path | None,
    extra_args: tuple[str, ...] | list[str],
    token: str,
    deployer_port: int,
    service_port: int,
) -> DemoStack:
    while service_port == deployer_port:
        service_port = free_port()
    log_file = workdir / "demo-service.log"
    state_dir = workdir / "deployer-state"
    args = [
        "--port", str(deployer_port),
        "--service-port", str(service_port),
        "--log-file", str(log_file),
        "--state-dir", str(state_dir),
        "--initial-version", initial_version,
    ]  # fmt: skip
    for url in notify_urls:
        args += ["--notify-url", url]
    if notify_token_env:
        args += ["--notify-token-env", notify_token_env]
    if versions_file is not None:
        args += ["--versions-file", str(versions_file)]
    args += list(extra_args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["DEMO_DEPLOYER_TOKEN"] = token
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")) if p
    )
    stack = DemoStack(workdir, deployer_port, service_port, token, log_file, state_dir, args, full_env)
    try:
        stack.start_deployer()
        if load_rps:
            stack.load_rps = load_rps
            stack.start_load(load_rps)
    except BaseException:
        stack.stop()
        raise
    return stack
