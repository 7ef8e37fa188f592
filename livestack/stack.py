"""The live stack on loopback, in one command: ``./scripts/live.sh`` (``python -m livestack.stack``).

It starts, each on 127.0.0.1:

- the demo service's deployer and its instance (``demo_service/``), starting at ``v1.0.0``, with
  its bounded load generator (20 requests a second);
- Debian's Prometheus scraping the service and the deployer every second, with the recording rules
  of ``livestack/prometheus/rules.yml``;
- a services file (``CONSOLE_SERVICES_FILE``) pointing the console at them: Prometheus, the
  service's JSON-lines log, and the ``demo-service`` executor, with windows of seconds;
- a sign-in file (``CONSOLE_SECRETS``) with two password users, ``alice`` and ``bob`` (approvers),
  whose passwords are made at each start and printed once on the terminal (a live console refuses
  demo identities, and the person who deploys cannot approve alone, so a demo needs two people);
- the console itself (``streamlit run server.py``, as ``scripts/console.sh``), on the embedded engine.

Every file lives under the state directory (``.live/`` by default): the console's database (kept
between starts), the processes' logs, Prometheus' data. The deployer starts afresh each time (at
v1.0.0). Ctrl-C (or SIGTERM) stops everything. The deployer announces every deploy to the console's
``POST /api/deployments`` (a token made at each start), so a deploy made with curl against the
deployer starts the loop as well as one made from the Scenarios page's Live section; both announce
the same deployment id, and the console starts one run for it.

Tests reuse :func:`start_live_stack` with free ports and tight windows::

    stack = start_live_stack(StackOptions(tmp_path, ports=FREE_PORTS, windows=Windows(15, 30, 15)))
    try:
        stack.wait_steady()
        ...  # stack.console_url, stack.passwords["alice"], stack.demo.deploy(...)
    finally:
        stack.stop()
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import requests

from demo_service.testing import DemoStack, start_demo_stack
from livestack.processes import LiveStackError, PrometheusProcess, missing_reason, start_prometheus

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE = "demo-service"
TOKEN_ENV = "DEMO_DEPLOYER_TOKEN"  # noqa: S105 -- the name of the variable, not a token
ANNOUNCE_TOKEN_ENV = "LIVE_ANNOUNCE_TOKEN"  # noqa: S105 -- the name of the variable, not a token
"""The deployer announces each deploy to the console's ``POST /api/deployments`` with this token
(the console's ``CONSOLE_API_TOKEN``, acting as ``deployer``), so a deploy made with curl starts
the loop too; made at each start, never printed."""
USERS = ("alice", "bob")

DEFAULT_PORTS = {"console": 8501, "deployer": 8700, "service": 8701, "prometheus": 9090}
"""Fixed defaults (the console's usual port, the compose file's deployer/service ports, Prometheus'
own); each can be changed with ``--<name>-port`` or ``LIVE_<NAME>_PORT``; 0 asks the OS."""
FREE_PORTS = dict.fromkeys(DEFAULT_PORTS, 0)

# Where the user's shell may point the console elsewhere: not for the live stack's console.
SCRUBBED_ENV = (
    "KESTRA_URL",
    "CONSOLE_DATA_DIR",
    "CONSOLE_SECRETS",
    "CONSOLE_SERVICES_FILE",
    "CONSOLE_DEMO_IDENTITY",
)


@dataclass(frozen=True)
class Windows:
    """Baseline, verification and post-action windows of the services file, seconds."""

    baseline_s: float = 20.0
    verify_s: float = 30.0
    post_action_s: float = 20.0


@dataclass
class StackOptions:
    state_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    windows: Windows = Windows()
    rps: float = 20.0
    poll_s: float = 1.0
    """LIVE_POLL_S of the console: how often the verification window is re-analysed."""
    console: bool = True
    passwords: dict[str, str] | None = None
    """Per user; None makes new random ones."""


class StackError(RuntimeError):
    """The stack cannot start: one line saying why and what to do."""


# -- checks ---------------------------------------------------------------------------------------------


def port_busy(port: int) -> bool:
    if not port:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def problems(options: StackOptions) -> list[str]:
    """What stops the stack from starting, one line each with the fix ([] when it can start)."""
    out = []
    reason = missing_reason("prometheus")
    if reason:
        out.append(reason.replace("prometheus binary not found", "prometheus not found"))
    if options.console and importlib.util.find_spec("streamlit") is None:
        out.append("streamlit not found in this Python: run ./scripts/bootstrap.sh requirements.txt")
    busy = {name: port for name, port in options.ports.items() if port_busy(port)}
    if busy and len(busy) == len(options.ports):
        out.append(
            f"ports {', '.join(str(p) for p in busy.values())} are all in use on 127.0.0.1: the live "
            "stack is probably running already (stop it with Ctrl-C in its terminal, or pass other "
            "ports: --help)"
        )
    else:
        out.extend(
            f"port {port} ({name}) is in use on 127.0.0.1: pass --{name}-port or set "
            f"LIVE_{name.upper()}_PORT (0 picks a free one)"
            for name, port in busy.items()
        )
    used = [p for p in options.ports.values() if p]
    if len(used) != len(set(used)):
        out.append(f"two parts were given the same port: {options.ports}")
    try:
        options.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        out.append(f"the state directory {options.state_dir} cannot be made: {exc.strerror or exc}")
    return out


# -- files ------------------------------------------------------------------------------------------------


def services_yaml(prom_url: str, demo: DemoStack, windows: Windows) -> str:
    """The services file: Prometheus, the JSON-lines log and the demo-service executor."""
    return (
        "# Written by livestack/stack.py (./scripts/live.sh) at each start: the live stack's demo service.\n"
        "services:\n"
        f"  {SERVICE}:\n"
        "    environment: live-demo\n"
        f"    windows: {{baseline_s: {windows.baseline_s:g}, verify_s: {windows.verify_s:g}, "
        f"post_action_s: {windows.post_action_s:g}}}\n"
        f"    prometheus: {{url: '{prom_url}', profile: demo-service, selector: 'service=\"{SERVICE}\"', "
        "scrape_interval_s: 1}\n"
        f"    logs: {{type: jsonl, path: '{demo.log_file}'}}\n"
        f"    executor: {{type: demo-service, url: '{demo.deployer_url}', token_env: {TOKEN_ENV}, "
        "verify_timeout_s: 15}\n"
    )


def secrets_toml(passwords: dict[str, str]) -> str:
    """A sign-in file with one password user (approver) per name; hashes only, never a password."""
    from console.access.auth import hash_password

    tables = [
        f'[console_auth.users.{name}]\npassword_hash = "{hash_password(password)}"\nrole = "approver"\n'
        for name, password in passwords.items()
    ]
    return "# Written by livestack/stack.py at each start: the live demo's sign-in.\n" + "\n".join(tables)


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


# -- the stack -------------------------------------------------------------------------------------------


@dataclass
class LiveStack:
    options: StackOptions
    demo: DemoStack
    prom: PrometheusProcess
    services_file: Path
    secrets_file: Path
    token_file: Path
    """The deployer's bearer token (mode 600), for a deploy made with curl."""
    passwords: dict[str, str]
    console_proc: subprocess.Popen[bytes] | None = None
    console_port: int = 0
    announce_token: str = field(default="", repr=False)
    _console_log: IO[bytes] | None = field(default=None, repr=False)
    stopped: bool = False

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def console_log(self) -> Path:
        return self.options.state_dir / "console.log"

    def processes(self) -> dict[str, subprocess.Popen[bytes] | None]:
        return {
            "deployer": self.demo.proc,
            "load": self.demo.load_proc,
            "prometheus": self.prom.process,
            "console": self.console_proc,
        }

    def exited(self) -> str | None:
        """The first part that stopped on its own, in one line with its log's tail; None when all run."""
        for name, proc in self.processes().items():
            if proc is not None and proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        return None

    def query(self, promql: str) -> float | None:
        """One instant query of the stack's Prometheus (:func:`instant_query`)."""
        return instant_query(self.prom.url, promql)

    def wait_steady(self, timeout: float = 120.0) -> float:
        """Wait until Prometheus holds a whole baseline window of steady, healthy traffic: a point
        every second of the last ``baseline_s``, the request rate near the load's, no errors, the
        memory low (what the loop's baseline needs). Returns the seconds waited."""
        return wait_steady(self.query, self.options.windows.baseline_s, self.options.rps, timeout)

    def stop(self) -> None:
        """The console, Prometheus, the load and the deployer (its instances with it); each even if
        another fails. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.console_proc is not None:
                _terminate(self.console_proc, 15)
            if self._console_log is not None:
                self._console_log.close()
        finally:
            try:
                self.prom.stop()
            finally:
                self.demo.stop()

    def __enter__(self) -> LiveStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_steady(query: Callable[[str], float | None], baseline_s: float, rps: float, timeout: float) -> float:
    """See :meth:`LiveStack.wait_steady`; ``query`` runs one instant PromQL query (value or None)."""
    began = time.monotonic()
    span = f"{baseline_s + 2:g}s"
    sel = f'{{service="{SERVICE}"}}'
    while time.monotonic() - began < timeout:
        points = query(f"count_over_time(service:http_requests:rate5s{sel}[{span}])")
        slowest = query(f"min_over_time(service:http_requests:rate5s{sel}[{span}])")
        errors = query(f"max_over_time(service:http_requests_errors:ratio_rate5s{sel}[{span}])")
        memory = query(f"max_over_time(service:process_resident_memory_bytes:max_ratio_limit{sel}[{span}])")
        if (
            points is not None
            and points >= baseline_s
            and slowest is not None
            and slowest >= 0.8 * rps
            and errors == 0.0
            and memory is not None
            and memory < 0.5
        ):
            return time.monotonic() - began
        time.sleep(0.5)
    raise TimeoutError(f"no steady baseline in Prometheus within {timeout:g} s")


def instant_query(prometheus_url: str, promql: str) -> float | None:
    """One instant query; the first sample's value, or None (no answer, no sample)."""
    try:
        answer = requests.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5).json()
    except (requests.RequestException, ValueError):
        return None
    result = (answer.get("data") or {}).get("result") or []
    return float(result[0]["value"][1]) if result else None


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_console(stack: LiveStack, port: int) -> None:
    """The console on ``port`` (chosen before the deployer, which announces to it)."""
    options = stack.options
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV and not k.startswith("KESTRA_")}
    env.update(
        {
            "CONSOLE_DATA_DIR": str(options.state_dir / "console-data"),
            "CONSOLE_SECRETS": str(stack.secrets_file),
            "CONSOLE_SERVICES_FILE": str(stack.services_file),
            "LIVE_POLL_S": f"{options.poll_s:g}",
            TOKEN_ENV: stack.demo.token,
            "CONSOLE_API_TOKEN": stack.announce_token,
            "CONSOLE_API_TOKEN_NAME": "deployer",
            "PYTHONUNBUFFERED": "1",
        }
    )
    stack.console_port = port
    stack._console_log = stack.console_log.open("ab")
    stack.console_proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "server.py"),
            "--server.headless", "true",
            "--server.fileWatcherType", "none",
            "--server.address", "127.0.0.1",
            "--server.port", str(stack.console_port),
            "--browser.gatherUsageStats", "false",
        ],
        cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=stack._console_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{stack.console_url}/_stcore/health", timeout=1).text == "ok":
                return
        except requests.RequestException:
            pass
        if stack.console_proc.poll() is not None or time.monotonic() > deadline:
            tail = stack.console_log.read_text(errors="replace").strip().splitlines()[-5:]
            raise StackError(f"the console did not start (see {stack.console_log}): " + " | ".join(tail))
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_live_stack(options: StackOptions) -> LiveStack:
    """Start every part (see the module's docstring); :class:`StackError` with one line when
    something is missing or does not start, after stopping what did start."""
    found = problems(options)
    if found:
        raise StackError("; ".join(found))
    state = options.state_dir
    shutil.rmtree(state / "stack" / "deployer-state", ignore_errors=True)  # each start begins at v1.0.0
    passwords = dict(options.passwords or {name: secrets.token_urlsafe(9) for name in USERS})
    demo: DemoStack | None = None
    prom: PrometheusProcess | None = None
    console_port = (options.ports.get("console", 0) or _free_port()) if options.console else 0
    announce_token = secrets.token_urlsafe(24) if options.console else ""
    try:
        try:
            demo = start_demo_stack(
                state / "stack",
                load_rps=options.rps,
                deployer_port=options.ports.get("deployer", 0),
                service_port=options.ports.get("service", 0),
                notify_urls=[f"http://127.0.0.1:{console_port}/api/deployments"] if options.console else [],
                notify_token_env=ANNOUNCE_TOKEN_ENV if options.console else None,
                env={ANNOUNCE_TOKEN_ENV: announce_token} if options.console else None,
            )
        except RuntimeError as exc:
            raise StackError(f"the demo service did not start: {_flat(exc, 300)}") from None
        try:
            prom = start_prometheus(
                state / "prometheus",
                {
                    SERVICE: [f"127.0.0.1:{demo.service_port}"],
                    "deployer": [f"127.0.0.1:{demo.deployer_port}"],
                },
                port=options.ports.get("prometheus", 0),
                retention="2d",
            )
        except (LiveStackError, OSError) as exc:
            raise StackError(_flat(exc, 400)) from None
        stack = LiveStack(
            options,
            demo,
            prom,
            services_file=_private(state / "services.yaml", services_yaml(prom.url, demo, options.windows)),
            secrets_file=_private(state / "secrets.toml", secrets_toml(passwords)),
            token_file=_private(state / "deployer.token", demo.token),
            passwords=passwords,
            announce_token=announce_token,
        )
        if options.console:
            try:
                _start_console(stack, console_port)
            except BaseException:
                stack.stop()
                raise
    except BaseException:  # a failure or a Ctrl-C half-way: stop what did start
        if prom is not None:
            prom.stop()
        if demo is not None:
            demo.stop()
        raise
    return stack


def _flat(exc: BaseException, limit: int) -> str:
    return " ".join(str(exc).split())[:limit]


# -- the command -----------------------------------------------------------------------------------------


def _port_default(name: str) -> int:
    value = os.environ.get(f"LIVE_{name.upper()}_PORT", "")
    return int(value) if value.strip().isdigit() else DEFAULT_PORTS[name]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./scripts/live.sh",
        description="Start the live stack on loopback: the demo service and its load, Prometheus, "
        "and the console pointed at them. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("LIVE_STATE_DIR", PROJECT_ROOT / ".live"))
    )
    for name in DEFAULT_PORTS:
        parser.add_argument(f"--{name}-port", type=int, default=_port_default(name), metavar="PORT")
    parser.add_argument("--rps", type=float, default=20.0, help="load on the service (requests a second)")
    parser.add_argument("--baseline", type=float, default=Windows.baseline_s, metavar="S")
    parser.add_argument("--verify", type=float, default=Windows.verify_s, metavar="S")
    parser.add_argument("--post-action", type=float, default=Windows.post_action_s, metavar="S")
    parser.add_argument("--check", action="store_true", help="only check that it can start, then exit")
    parser.add_argument(
        "--fresh", action="store_true", help="wipe the state directory first (the console's runs too)"
    )
    return parser.parse_args(argv)


class _Stop(Exception):
    pass


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    state_dir = args.state_dir.resolve()
    ports = {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS}
    options = StackOptions(
        state_dir, ports=ports, windows=Windows(args.baseline, args.verify, args.post_action), rps=args.rps
    )
    if args.check:
        found = problems(options)
        for line in found:
            print(f"live: {line}", file=sys.stderr)
        if not found:
            print(f"live: ready to start (state in {state_dir}; ports {ports})")
        return 2 if found else 0
    if args.fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    stack: LiveStack | None = None
    code = 0
    try:
        print(
            f"live: starting the demo service, Prometheus and the console (state in {state_dir})...",
            flush=True,
        )
        stack = start_live_stack(options)
        _print_started(stack)
        try:
            waited = stack.wait_steady(timeout=120)
            print(f"live: baseline steady in Prometheus after {waited:.0f} s: ready to deploy.", flush=True)
        except TimeoutError as exc:
            print(f"live: {exc}; the console runs anyway (see {stack.prom.log_path}).", flush=True)
        while True:
            gone = stack.exited()
            if gone:
                print(
                    f"live: {gone}; stopping everything (logs in {state_dir}).", file=sys.stderr, flush=True
                )
                code = 1
                break
            time.sleep(1)
    except StackError as exc:
        print(f"live: {exc}", file=sys.stderr, flush=True)
        code = 2
    except (_Stop, KeyboardInterrupt):
        print("\nlive: stopping...", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.stop()
            left = stack.demo.leftovers
            print(
                "live: stopped." + (f" (killed {len(left)} leftover instance(s))" if left else ""), flush=True
            )
    return code


def _print_started(stack: LiveStack) -> None:
    o = stack.options
    users = " · ".join(f"{name} / {password}" for name, password in stack.passwords.items())
    lines = [
        f"live: console     {stack.console_url}   → Scenarios → Live",
        f"live: sign in as  {users}   (approvers; whoever deploys cannot approve alone)",
        f"live: prometheus  {stack.prom.url}",
        f"live: deployer    {stack.demo.deployer_url}   (bearer token in {stack.token_file}, not shown)",
        f"live: service     {stack.demo.service_url}   (load {o.rps:g} req/s)",
        f"live: windows     baseline {o.windows.baseline_s:g} s, verification {o.windows.verify_s:g} s, "
        f"post-action {o.windows.post_action_s:g} s",
        f"live: files       {stack.services_file}, {stack.secrets_file}, logs in {o.state_dir}",
        f"live: waiting for a steady baseline in Prometheus (about {o.windows.baseline_s + 8:.0f} s)... "
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
