"""Launchers of the live stack's Prometheus and Alertmanager, and its test-data tools.

Used by ``scripts/live.sh`` and the live tests; importable on its own (standard library,
``requests`` and ``pyyaml`` only)::

    from livestack.processes import start_alertmanager, start_prometheus, backfill, openmetrics_text

    with start_prometheus(tmp_dir, {"demo-service": ["127.0.0.1:8701"]}) as prom:
        print(prom.url)            # http://127.0.0.1:PORT, ready to answer queries

    with start_alertmanager(tmp_dir, "http://127.0.0.1:8501/api/alerts", token="...") as am:
        print(am.url)              # routes every alert to the console's /api/alerts

Prometheus is Debian's ``/usr/bin/prometheus`` (``apt-get install prometheus``), started on
loopback with ``--web.enable-lifecycle`` (``POST /-/reload`` after the config changes);
Alertmanager is Debian's ``/usr/bin/prometheus-alertmanager`` (``apt-get install
prometheus-alertmanager``), on loopback with its clustering off. Their output goes to a file (a
pipe nobody reads would block it once full).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self, TypeVar
from urllib.parse import urlsplit

import requests
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules.yml"
"""Recording rules of the demo service (error ratio, p95 latency, request rate, cpu, memory,
restarts)."""
ALERTS_FILE = PROMETHEUS_DIR / "alerts.yml"
"""Alert rules of the demo service (memory over 90 % of its limit: the leak)."""
BASE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"

BINARIES = {
    "prometheus": "PROMETHEUS_BIN",
    "promtool": "PROMTOOL_BIN",
    "prometheus-alertmanager": "ALERTMANAGER_BIN",
    "amtool": "AMTOOL_BIN",
}
"""Binary -> environment variable that may point at another copy (e.g. one unpacked with
``dpkg-deb -x`` where apt-get cannot run)."""
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}


class LiveStackError(RuntimeError):
    """A live-stack process could not start or a tool failed; one line plus the log's tail."""


def find_binary(name: str) -> str | None:
    """``$PROMETHEUS_BIN``/``$PROMTOOL_BIN``, else Debian's ``/usr/bin/<name>``, else PATH."""
    override = os.environ.get(BINARIES.get(name, ""), "")
    if override:
        return override if os.access(override, os.X_OK) else None
    debian = Path("/usr/bin") / name
    if os.access(debian, os.X_OK):
        return str(debian)
    return shutil.which(name)


def missing_reason(name: str) -> str | None:
    """Why ``name`` cannot run here (for a test's skip message), or None when it can."""
    if find_binary(name):
        return None
    package = PACKAGES.get(name, name)
    return f"{name} binary not found: apt-get install {package} (or set {BINARIES.get(name, 'PATH')})"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def duration_seconds(value: str | float) -> float:
    """``"1s"`` -> 1.0, ``"1m30s"`` -> 90.0, ``"500ms"`` -> 0.5; numbers are seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration: {value!r} (e.g. 1s, 500ms, 1m)")
    h, m, s, ms = (int(g) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def _duration_text(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def render_prometheus_config(
    targets: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path | str] = (RULES_FILE,),
    alertmanager_url: str | None = None,
    scrape_interval: str | float = "1s",
    evaluation_interval: str | float | None = None,
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The configuration as a dict: :data:`BASE_CONFIG` with ``targets`` (job -> ["host:port"]),
    absolute rule files, the intervals (the scrape timeout is kept within the interval, which
    Prometheus requires) and, when given, one Alertmanager. ``labels`` adds target labels per job."""
    config = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    interval = duration_seconds(scrape_interval)
    evaluation = duration_seconds(evaluation_interval if evaluation_interval is not None else scrape_interval)
    config["global"].update(
        scrape_interval=_duration_text(interval),
        evaluation_interval=_duration_text(evaluation),
        scrape_timeout=_duration_text(min(interval, 10.0)),
    )
    config["rule_files"] = [str(Path(p).resolve()) for p in rule_files]
    config["scrape_configs"] = [
        {
            "job_name": job,
            "static_configs": [
                {
                    "targets": list(hosts),
                    **({"labels": dict(labels[job])} if labels and job in labels else {}),
                }
            ],
        }
        for job, hosts in targets.items()
    ]
    if alertmanager_url:
        parts = urlsplit(alertmanager_url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"alertmanager_url needs a host and a port: {alertmanager_url!r}")
        manager: dict[str, Any] = {
            "scheme": parts.scheme or "http",
            "static_configs": [{"targets": [f"{parts.hostname}:{parts.port}"]}],
        }
        if parts.path.strip("/"):
            manager["path_prefix"] = parts.path
        config["alerting"] = {"alertmanagers": [manager]}
    return config


@dataclass
class DaemonProcess:
    """A running Prometheus or Alertmanager on loopback. ``stop()`` is idempotent; use it as a
    context manager in tests."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    config_path: Path
    storage_dir: Path
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    NAME: ClassVar[str] = "the process"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout_s: float, auth: tuple[str, str] | None = None) -> None:
        """Until ``/-/ready`` answers 200; stops the process and raises :class:`LiveStackError`
        with its log's tail when it exits or is not ready in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise LiveStackError(
                    f"{self.NAME} exited with code {self.process.returncode} before it was ready; "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1.0, auth=auth).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise LiveStackError(
            f"{self.NAME} was not ready within {timeout_s:g} s; "
            f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; waits for the process to be gone."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


D = TypeVar("D", bound=DaemonProcess)


def _launch(
    kind: type[D],
    binary: str,
    args: Callable[[int], list[str]],
    *,
    tmp_dir: Path,
    log_prefix: str,
    port: int,
    config_path: Path,
    storage: Path,
    ready_timeout_s: float,
    ready_auth: tuple[str, str] | None = None,
) -> D:
    """Start ``binary`` with ``args(port)`` on ``127.0.0.1:port`` (0 = a free port, retried when
    taken between the check and the bind), its output to a log file, and wait until it is ready."""
    attempts = 1 if port else 3
    for attempt in range(attempts):
        chosen = port or free_port()
        log_path = tmp_dir / f"{log_prefix}-{chosen}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [binary, *args(chosen)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        handle = kind(
            url=f"http://127.0.0.1:{chosen}",
            port=chosen,
            process=process,
            config_path=config_path,
            storage_dir=storage,
            log_path=log_path,
            _log=log,
        )
        try:
            handle.wait_ready(ready_timeout_s, ready_auth)
            return handle
        except LiveStackError:
            handle.stop()
            if attempt + 1 < attempts and "address already in use" in handle.log_tail().lower():
                continue
            raise
        except BaseException:
            handle.stop()
            raise
    raise LiveStackError(f"{kind.NAME} could not bind a free port")  # pragma: no cover - returns or raises


@dataclass
class PrometheusProcess(DaemonProcess):
    """A running Prometheus."""

    NAME: ClassVar[str] = "Prometheus"

    def reload(self, timeout_s: float = 10.0) -> None:
        """Re-read the config file (after :func:`write_prometheus_config` changed it)."""
        response = requests.post(f"{self.url}/-/reload", timeout=timeout_s)
        if response.status_code != 200:
            raise LiveStackError(
                f"Prometheus reload failed (HTTP {response.status_code}): {response.text.strip()}"
            )


def write_prometheus_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def start_prometheus(
    tmp_dir: Path,
    targets: Mapping[str, Sequence[str]],
    *,
    port: int = 0,
    rule_files: Sequence[Path | str] = (RULES_FILE,),
    alertmanager_url: str | None = None,
    scrape_interval: str | float = "1s",
    evaluation_interval: str | float | None = None,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    storage_dir: Path | None = None,
    retention: str = "30d",
    ready_timeout_s: float = 30.0,
    extra_args: Sequence[str] = (),
    ready_auth: tuple[str, str] | None = None,
) -> PrometheusProcess:
    """Write the config under ``tmp_dir`` and start Prometheus on ``127.0.0.1:port`` (0 = a free
    port), returning once ``/-/ready`` answers. ``targets`` maps a job name to ``host:port``
    targets (an empty mapping is fine: rules and backfilled data still work). ``storage_dir``
    defaults to ``tmp_dir/data`` (fill it with :func:`backfill` before starting for past data).
    Ready means it answers queries: the first scrape comes about 5 s later (Prometheus 2.42 applies
    its scrape targets on a 5 s tick), so start it before the load that has to be measured.
    ``extra_args`` go to the binary as they are (e.g. ``--web.config.file=...`` for basic auth,
    then ``ready_auth=(user, password)`` for the readiness check).
    Raises :class:`LiveStackError` (with the log's tail) if it cannot start."""
    binary = find_binary("prometheus")
    if binary is None:
        raise LiveStackError(missing_reason("prometheus") or "prometheus binary not found")
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    storage = Path(storage_dir) if storage_dir is not None else tmp_dir / "data"
    storage.mkdir(parents=True, exist_ok=True)
    config = render_prometheus_config(
        targets,
        rule_files=rule_files,
        alertmanager_url=alertmanager_url,
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
        labels=labels,
    )
    config_path = write_prometheus_config(tmp_dir / "prometheus.yml", config)
    return _launch(
        PrometheusProcess,
        binary,
        lambda chosen: [
            f"--config.file={config_path}",
            f"--storage.tsdb.path={storage}",
            f"--storage.tsdb.retention.time={retention}",
            f"--web.listen-address=127.0.0.1:{chosen}",
            "--web.enable-lifecycle",
            *extra_args,
        ],
        tmp_dir=tmp_dir,
        log_prefix="prometheus",
        port=port,
        config_path=config_path,
        storage=storage,
        ready_timeout_s=ready_timeout_s,
        ready_auth=ready_auth,
    )


def _promtool(*args: str, timeout_s: float = 120.0) -> str:
    binary = find_binary("promtool")
    if binary is None:
        raise LiveStackError(missing_reason("promtool") or "promtool binary not found")
    done = subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise LiveStackError(
            f"promtool {args[0]} {args[1] if len(args) > 1 else ''} failed:\n{output[-2000:]}"
        )
    return output


def check_rules(*paths: Path | str) -> str:
    """``promtool check rules``; raises :class:`LiveStackError` with promtool's reasons."""
    return _promtool("check", "rules", *(str(p) for p in paths))


def check_config(path: Path | str) -> str:
    """``promtool check config`` (also checks the rule files it names)."""
    return _promtool("check", "config", str(path))


def backfill(openmetrics: str, storage_dir: Path, *, work_dir: Path | None = None) -> str:
    """Write past samples into ``storage_dir`` as TSDB blocks, through
    ``promtool tsdb create-blocks-from openmetrics``. Do it before starting Prometheus on that
    directory. Samples older than the retention (``start_prometheus(retention=...)``) are
    deleted by Prometheus at its next compaction: keep test data recent."""
    text = openmetrics if openmetrics.rstrip().endswith("# EOF") else openmetrics.rstrip("\n") + "\n# EOF\n"
    storage_dir = Path(storage_dir)
    storage_dir.mkdir(parents=True, exist_ok=True)
    source = Path(work_dir or storage_dir.parent) / "backfill.om.txt"
    source.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    try:
        return _promtool("tsdb", "create-blocks-from", "openmetrics", str(source), str(storage_dir))
    finally:
        source.unlink(missing_ok=True)


def _om_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics_text(
    series: Iterable[tuple[str, Mapping[str, str], Sequence[tuple[float, float]]]],
) -> str:
    """OpenMetrics text for :func:`backfill`: each ``(name, labels, [(unix_s, value), ...])`` as a
    gauge. NaN and ±Inf are written as OpenMetrics spells them (``NaN``, ``+Inf``, ``-Inf``)."""
    families: dict[str, list[tuple[Mapping[str, str], Sequence[tuple[float, float]]]]] = {}
    for name, labels, points in series:
        families.setdefault(name, []).append((labels, points))
    lines: list[str] = []
    for name, members in families.items():
        lines.append(f"# TYPE {name} gauge")
        for labels, points in members:
            label_text = "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"
            if not labels:
                label_text = ""
            lines.extend(f"{name}{label_text} {_om_value(v)} {t:.3f}" for t, v in sorted(points))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


# -- Alertmanager ---------------------------------------------------------------------------------


def render_alertmanager_config(
    webhook_url: str,
    *,
    token_file: Path | str | None = None,
    group_by: Sequence[str] = ("alertname", "service"),
    group_wait: str = "0s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    resolve_timeout: str = "5s",
) -> dict[str, Any]:
    """One route sending every alert to ``webhook_url`` (the console's ``/api/alerts``), resolutions
    included, with ``Authorization: Bearer`` read from ``token_file`` when given (the token never
    sits in the config). The defaults suit a demo or a test (send at once, regroup every second);
    production keeps Alertmanager's own (30s / 5m / 4h)."""
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True, "max_alerts": 0}
    if token_file is not None:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": str(Path(token_file).resolve())}
        }
    return {
        "global": {"resolve_timeout": resolve_timeout},
        "route": {
            "receiver": "console",
            "group_by": list(group_by),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "console", "webhook_configs": [webhook]}],
    }


@dataclass
class AlertmanagerProcess(DaemonProcess):
    """A running Alertmanager."""

    NAME: ClassVar[str] = "Alertmanager"

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds now."""
        response = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (what Prometheus does): alerts to route."""
        requests.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=5).raise_for_status()


def start_alertmanager(
    tmp_dir: Path,
    webhook_url: str,
    *,
    token: str | None = None,
    port: int = 0,
    ready_timeout_s: float = 20.0,
    **routing: Any,
) -> AlertmanagerProcess:
    """Write the config under ``tmp_dir`` (:func:`render_alertmanager_config`; ``routing`` passes
    ``group_wait``, ``group_interval``, ``repeat_interval``, ``resolve_timeout``, ``group_by``) and
    start Alertmanager on ``127.0.0.1:port`` (0 = a free port) with clustering off, returning once
    ``/-/ready`` answers. ``token`` goes to a file of its own (mode 600) that the config names.
    Raises :class:`LiveStackError` (with the log's tail) if it cannot start."""
    binary = find_binary("prometheus-alertmanager")
    if binary is None:
        raise LiveStackError(
            missing_reason("prometheus-alertmanager") or "prometheus-alertmanager binary not found"
        )
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    token_file = None
    if token is not None:
        token_file = tmp_dir / "webhook-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token, encoding="utf-8")
    config = render_alertmanager_config(webhook_url, token_file=token_file, **routing)
    config_path = tmp_dir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    storage = tmp_dir / "alertmanager-data"
    storage.mkdir(exist_ok=True)
    return _launch(
        AlertmanagerProcess,
        binary,
        lambda chosen: [
            f"--config.file={config_path}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{chosen}",
            "--cluster.listen-address=",  # no gossip port on every interface
            "--log.level=info",
        ],
        tmp_dir=tmp_dir,
        log_prefix="alertmanager",
        port=port,
        config_path=config_path,
        storage=storage,
        ready_timeout_s=ready_timeout_s,
    )


def check_alertmanager_config(path: Path | str) -> str:
    """``amtool check-config``; raises :class:`LiveStackError` with amtool's reasons."""
    binary = find_binary("amtool")
    if binary is None:
        raise LiveStackError(missing_reason("amtool") or "amtool binary not found")
    done = subprocess.run(
        [binary, "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise LiveStackError(f"amtool check-config failed:\n{output[-2000:]}")
    return output
