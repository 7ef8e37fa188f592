"""The deployer's process side: runs service instances, switches them like a rolling deploy, restarts
one that crashes, and records every switch.

Rolling on one port: the deployer owns the listening socket and every instance inherits it
(``--listen-fd``), so the old and the new instance accept from the same kernel queue. The new one
reports ready on a pipe; then the old one stops accepting, finishes its in-flight requests and
exits. A connection waiting in the queue is taken by whichever instance accepts next: none is
reset, unlike separate SO_REUSEPORT sockets, whose queued connections die with the socket.

One thread does all process management (switches, crash watch, restarts), fed by a queue, so a
crash restart and a deploy never race. A deploy is taken while a crashed instance waits for its
restart backoff; a second deploy while one runs is refused (409).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from demo_service import SERVICE_NAME
from demo_service.behaviour import Behaviour, VersionSpec
from demo_service.history import DeploymentHistory, ServiceState, new_record
from demo_service.jsonlog import JsonLog, utc_now

PACKAGE_PARENT = Path(__file__).resolve().parent.parent
STABLE_AFTER_S = 30.0  # an instance that ran this long before crashing resets the backoff


def describe_exit(code: int | None) -> str:
    """'exited with code 137', or 'was killed by SIGKILL' for a signal (Popen's negative codes)."""
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class DeployError(Exception):
    """A deploy, rollback or restart that cannot be done; ``status`` is the HTTP status to answer,
    ``extra`` more fields of the JSON answer (the current state beside a 409 on ``expected_version``)."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    version: str
    behaviour: Behaviour
    started_at: str
    started_mono: float = field(default_factory=time.monotonic)


@dataclass
class _Command:
    kind: str
    version: str
    behaviour: Behaviour
    by: str
    reason: str | None
    future: Future[dict[str, Any]]
    accepted: float = field(default_factory=time.monotonic)
    key: str | None = None


class Supervisor:
    def __init__(
        self,
        *,
        listen_socket: socket.socket,
        log_file: Path,
        state_dir: Path,
        history: DeploymentHistory,
        state: ServiceState,
        versions: dict[str, VersionSpec],
        log: JsonLog,
        restarts_total: Counter,
        deployments_total: Counter,
        on_deployed: Callable[[dict[str, Any]], None],
        child_env: dict[str, str],
        ready_timeout: float = 15.0,
        drain_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        self.listen_socket = listen_socket
        self.log_file = log_file
        self.stderr_path = state_dir / "instances.stderr"
        self.history = history
        self.state = state
        self.versions = versions
        self.log = log
        self.restarts_total = restarts_total
        self.deployments_total = deployments_total
        self.on_deployed = on_deployed
        self.child_env = child_env
        self.ready_timeout = ready_timeout
        self.drain_timeout = drain_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

        self._lock = threading.Lock()
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._stopping = threading.Event()
        self._busy = False
        self._current: Running | None = None
        self._restarts = 0  # unexpected exits since the current version was switched in
        self._backoff = backoff_initial
        self._restart_at: float | None = None
        # Every instance holds the read end; when the deployer dies (even by SIGKILL) the write end
        # closes and the instances shut down instead of living on as orphans.
        self._lifeline_r, self._lifeline_w = os.pipe()
        self._keys: dict[str, Future[dict[str, Any]]] = {}
        """Idempotency keys of this run's switches: a second request with a key gets the first's answer."""
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)

    # ---- public side (called from API threads) -------------------------------------------------

    def start(self) -> None:
        """Start the current version's instance (waiting for it), then the supervising thread."""
        try:
            self._current = self._spawn(self.state.version, self.state.behaviour)
            self._info(f"instance pid {self._current.proc.pid} of {self.state.version} ready")
        except DeployError as exc:
            self._error(f"instance of {self.state.version} failed to start: {exc.message}; retrying")
            self._restart_at = time.monotonic() + self._next_backoff()
        self._thread.start()

    def submit(
        self,
        kind: str,
        by: str,
        reason: str | None = None,
        version: str | None = None,
        behaviour: Behaviour | None = None,
        *,
        expected_version: str | None = None,
        key: str | None = None,
    ) -> tuple[Future[dict[str, Any]], bool]:
        """Queue a switch; (its future, whether it is the answer of an earlier request with the same
        idempotency ``key``). Raises DeployError 409 when one is in progress or the service no
        longer runs ``expected_version`` (compare-and-swap: checked under the lock that starts the
        switch, so nothing can slip in between), 404 for an unknown target."""
        with self._lock:
            if key is not None:
                earlier = self._keys.get(key)
                if earlier is None:
                    recorded = self.history.by_key(key)
                    if recorded is not None:  # a key of before a restart of the deployer
                        earlier = Future()
                        earlier.set_result(recorded)
                        self._keys[key] = earlier
                if earlier is not None:
                    return earlier, True
            if self._stopping.is_set():
                raise DeployError(503, "the deployer is shutting down")
            if expected_version is not None and expected_version != self.state.version:
                raise DeployError(
                    409,
                    f"the service runs {self.state.version}, not {expected_version} (expected_version): "
                    f"nothing was done",
                    {"current": self._current_switch()},
                )
            if self._busy:
                raise DeployError(409, "a deploy is already in progress")
            if kind == "restart":
                version, behaviour = self.state.version, self.state.behaviour
            elif kind == "rollback":
                version = version or self.state.previous_version
                if version is None:
                    raise DeployError(409, f"no previous version to roll back to from {self.state.version}")
                behaviour = self._behaviour_of(version)
            if version is None or behaviour is None:
                raise DeployError(404, f"unknown version {version!r}")
            future: Future[dict[str, Any]] = Future()
            self._busy = True
            if key is not None:
                self._keys[key] = future
            self._commands.put(_Command(kind, version, behaviour, by, reason, future, key=key))
            return future, False

    def _current_switch(self) -> dict[str, Any]:
        """What runs and which switch put it there (called under the lock)."""
        return {
            "version": self.state.version,
            "deployment_id": self.state.deployment_id,
            "switched_at": self.state.switched_at,
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            run = self._current
            alive = run is not None and run.proc.poll() is None
            return {
                "service": SERVICE_NAME,
                "version": self.state.version,
                "previous_version": self.state.previous_version,
                "behaviour": self.state.behaviour.to_dict(),
                "pid": run.proc.pid if run is not None and alive else None,
                "started_at": run.started_at if run is not None and alive else None,
                "ready": alive,
                "restarts": self._restarts,
                "deploying": self._busy,
                "deployment_id": self.state.deployment_id,
                "switched_at": self.state.switched_at,
            }

    def pids(self) -> list[int]:
        with self._lock:
            return [self._current.proc.pid] if self._current is not None else []

    def stop(self) -> None:
        """Stop supervising and stop the running instance (SIGTERM, then SIGKILL after 5 s)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.ready_timeout + self.drain_timeout + 5)
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            command.future.set_exception(DeployError(503, "the deployer is shutting down"))
        with self._lock:
            run, self._current = self._current, None
        if run is not None:
            self._stop_instance(run, timeout=5.0)
        for fd in (self._lifeline_w, self._lifeline_r):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ---- the supervising thread ----------------------------------------------------------------

    def _behaviour_of(self, version: str) -> Behaviour | None:
        recorded = self.history.behaviour_of(version)
        if recorded is not None:
            return recorded
        spec = self.versions.get(version)
        return spec.behaviour if spec is not None else None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                command: _Command | None = self._commands.get(timeout=0.05)
            except queue.Empty:
                command = None
            if command is not None:
                try:
                    self._switch(command)
                except Exception as exc:  # never leave the API waiting or the deployer "busy"
                    with self._lock:
                        self._busy = False
                        if command.key is not None:
                            self._keys.pop(command.key, None)
                    self._error(f"{command.kind} to {command.version} failed: {type(exc).__name__}: {exc}")
                    if not command.future.done():
                        command.future.set_exception(
                            DeployError(500, f"internal error: {type(exc).__name__}")
                        )
            self._watch()

    def _switch(self, command: _Command) -> None:
        with self._lock:
            old = self._current
        self._info(
            f"{command.kind} to {command.version} requested by {command.by}"
            + (f": {command.reason}" if command.reason else "")
        )
        try:
            new = self._spawn(command.version, command.behaviour)
        except DeployError as exc:
            keeps = f"{old.version} keeps serving" if old is not None else "no instance is serving"
            self._error(f"{command.kind} to {command.version} failed: {exc.message}; {keeps}")
            with self._lock:
                self._busy = False
                if command.key is not None:  # nothing was done: the same key may try again
                    self._keys.pop(command.key, None)
            command.future.set_exception(exc)
            return
        with self._lock:
            self._current = new
            previous = self.state.version
            self._restart_at = None
            self._backoff = self.backoff_initial
            self._restarts = 0
        outcome = "no old instance was running"
        if old is not None and old.proc.poll() is None:
            outcome = f"old instance pid {old.proc.pid} {self._stop_instance(old, self.drain_timeout)}"
        duration_ms = int((time.monotonic() - command.accepted) * 1000)
        record = new_record(
            kind=command.kind,
            version=command.version,
            previous_version=previous,
            by=command.by,
            at=new.started_at,
            behaviour=command.behaviour,
            reason=command.reason,
            duration_ms=duration_ms,
            idempotency_key=command.key,
        )
        try:
            self.history.append(record)
        except OSError as exc:
            self._error(f"deployment {record['id']} could not be recorded: {exc.strerror or exc}")
        with self._lock:
            self.state.advance(record)
            self._busy = False
        self.deployments_total.labels(SERVICE_NAME, command.kind).inc()
        self._info(
            f"{command.kind} {record['id']}: {command.version} (previous {previous}) by {command.by} "
            f"in {duration_ms} ms; new instance pid {new.proc.pid} serving, {outcome}",
            deployment_id=record["id"],
        )
        self.on_deployed(record)
        command.future.set_result(record)

    def _watch(self) -> None:
        """Notice an instance that exited on its own and restart it after a backoff."""
        with self._lock:
            run = self._current
        if run is not None and run.proc.poll() is not None:
            ran = time.monotonic() - run.started_mono
            with self._lock:
                self._current = None
                self._restarts += 1
                restarts = self._restarts
            self.restarts_total.labels(SERVICE_NAME).inc()
            if ran >= STABLE_AFTER_S:
                self._backoff = self.backoff_initial
            delay = self._next_backoff()
            self._restart_at = time.monotonic() + delay
            self._error(
                f"back-off restarting failed instance: pid {run.proc.pid} ({run.version}) "
                f"{describe_exit(run.proc.returncode)} after {ran:.1f} s; restart {restarts} in {delay:g} s",
                version=run.version,
            )
        if self._current is None and self._restart_at is not None and time.monotonic() >= self._restart_at:
            version, behaviour = self.state.version, self.state.behaviour
            try:
                new = self._spawn(version, behaviour)
            except DeployError as exc:
                delay = self._next_backoff()
                self._restart_at = time.monotonic() + delay
                self._error(f"restart of {version} failed: {exc.message}; next attempt in {delay:g} s")
                return
            with self._lock:
                self._current = new
                self._restart_at = None
            self._info(f"restarted {version}: instance pid {new.proc.pid} ready")

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max)
        return delay

    # ---- processes -----------------------------------------------------------------------------

    def _spawn(self, version: str, behaviour: Behaviour) -> Running:
        """Start an instance and wait until it reports ready; DeployError 503 otherwise."""
        ready_r, ready_w = os.pipe()
        listen_fd = self.listen_socket.fileno()
        offset = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        argv = [
            sys.executable, "-m", "demo_service.app",
            "--version", version,
            "--behaviour", json.dumps(behaviour.to_dict(), separators=(",", ":")),
            "--log-file", str(self.log_file),
            "--listen-fd", str(listen_fd),
            "--ready-fd", str(ready_w),
            "--lifeline-fd", str(self._lifeline_r),
        ]  # fmt: skip
        try:
            with self.stderr_path.open("ab") as err:
                proc = subprocess.Popen(
                    argv,
                    pass_fds=(listen_fd, ready_w, self._lifeline_r),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=self.child_env,
                    cwd=PACKAGE_PARENT,
                    start_new_session=True,  # a Ctrl-C on the deployer's terminal is the deployer's
                )
        except OSError as exc:
            os.close(ready_r)
            raise DeployError(503, f"cannot start an instance of {version}: {exc.strerror or exc}") from None
        finally:
            os.close(ready_w)
        started_at = ""
        try:
            deadline = time.monotonic() + self.ready_timeout
            received = b""
            while b"ready" not in received:
                if self._stopping.is_set():
                    self._kill(proc)
                    raise DeployError(503, "the deployer is shutting down")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._kill(proc)
                    raise DeployError(
                        503,
                        f"the new instance of {version} did not become ready within {self.ready_timeout:g} s",
                    )
                readable, _, _ = select.select([ready_r], [], [], min(remaining, 0.2))
                if not readable:
                    continue
                chunk = os.read(ready_r, 64)
                if not chunk:
                    try:
                        code = proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self._kill(proc)
                        code = proc.returncode
                    detail = self._stderr_tail(offset)
                    raise DeployError(
                        503,
                        f"the new instance of {version} exited before it was ready (code {code})"
                        + (f": {detail}" if detail else ""),
                    )
                received += chunk
            started_at = utc_now()
        finally:
            os.close(ready_r)
        return Running(proc, version, behaviour, started_at)

    def _stop_instance(self, run: Running, timeout: float) -> str:
        """SIGTERM (the instance drains), SIGKILL after ``timeout``; says which it took."""
        if run.proc.poll() is not None:
            return f"had already exited (code {run.proc.returncode})"
        run.proc.send_signal(signal.SIGTERM)
        try:
            run.proc.wait(timeout=timeout)
            return "drained and stopped"
        except subprocess.TimeoutExpired:
            self._kill(run.proc)
            self.log.warn(
                f"instance pid {run.proc.pid} ({run.version}) did not drain within {timeout:g} s; killed",
                version=run.version,
            )
            return f"killed after {timeout:g} s"

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def _stderr_tail(self, offset: int) -> str:
        try:
            with self.stderr_path.open("rb") as fh:
                fh.seek(offset)
                lines = [line.strip() for line in fh.read(8192).decode(errors="replace").splitlines()]
        except OSError:
            return ""
        lines = [line for line in lines if line]
        return lines[-1][:300] if lines else ""

    def _info(self, message: str, **fields: Any) -> None:
        self.log.info(message, version=fields.pop("version", self.state.version), **fields)

    def _error(self, message: str, **fields: Any) -> None:
        self.log.error(message, version=fields.pop("version", self.state.version), **fields)
