"""A bounded soak: deploys, alerts, the console SIGKILLed and Prometheus restarted, mixed, on real
processes; then every accepted request must have reached a decision or an honest escalation.

    .venv/bin/python benchmarks/soak.py                 # 10 minutes of traffic, then the settling
    .venv/bin/python benchmarks/soak.py --minutes 4

On loopback: the demo service under load and its deployer, Debian's Prometheus scraping it every
second, and the console as users run it (``streamlit run server.py``: pages and API on one port,
the embedded engine) with a services file for demo-service (windows 10 / 20 / 5 s). The traffic:

- every ~6 s a deploy through the deployer (a leak one time in three, else a healthy version), then
  its announcement to ``POST /api/deployments`` as CI would send it;
- every ~10 s an Alertmanager delivery of 1 to 3 alerts (warning or critical) to ``POST /api/alerts``;
- every ~75 s the console is SIGKILLed and started again on the same data directory;
- every ~100 s Prometheus is stopped for ~15 s, then started again on the same storage.

Like Alertmanager and CI, the client sends a request again while it gets no answer or a 5xx
(Retry-After honoured, up to a minute); a 2xx with a run's id is an **accepted request**. After the
traffic stops the console gets a few minutes to settle, then it is stopped and the store read:

- decisions: accepted runs whose decision was made (their decide task finished: CONTINUE, ROLLBACK
  or ESCALATE), escalations among them (ESCALATE, telemetry lost, the store's faults);
- lost: accepted runs missing from the store, or with a delivery that is not ``launched`` (must be 0);
- doubled: two runs for one deployment id or one incident (must be 0);
- stuck: accepted runs neither decided, paused nor ended (must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.telemetry.times import format_ts  # noqa: E402
from demo_service.testing import start_demo_stack  # noqa: E402
from livestack.processes import start_prometheus  # noqa: E402
from tests.browser_support import ConsoleServer, start_console_server  # noqa: E402

TOKEN = "soak-token-0123456789abcdef0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEAK, HEALTHY = "v1.2.0-leak", ("v1.0.1", "v1.0.0")


@dataclass
class Soak:
    workdir: Path
    console: ConsoleServer | None = None
    accepted: dict[str, str] = field(default_factory=dict)  # execution id -> what asked for it
    refused: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    kills: int = 0
    prometheus_restarts: int = 0
    events: list[str] = field(default_factory=list)

    def env(self, services: Path) -> dict[str, str]:
        return {
            "CONSOLE_DATA_DIR": str(self.workdir / "data"),
            "CONSOLE_SERVICES_FILE": str(services),
            "CONSOLE_API_TOKEN": TOKEN,
            "CONSOLE_API_RATE_PER_MINUTE": "6000",
            "CONSOLE_API_BURST": "500",
            "CONSOLE_INTAKE_BUDGET": "40",
            "LIVE_POLL_S": "1",
            "LIVE_TELEMETRY_GRACE_S": "60",
            "CONSOLE_ENGINE_SWEEP_S": "5",
            "APPROVAL_TIMEOUT_MINUTES": "60",
        }

    def restart(self, env: dict[str, str], after_s: float) -> None:
        time.sleep(after_s)
        self.console = start_console_server(self.workdir, "soak", **env)

    def post(self, path: str, body: dict[str, Any], what: str, deadline_s: float = 90.0) -> None:
        """Send until a 2xx (retrying a 5xx or no answer, as Alertmanager and CI do)."""
        give_up = time.monotonic() + deadline_s
        while time.monotonic() < give_up:
            console = self.console
            try:
                answer = (
                    requests.post(console.url + path, json=body, headers=AUTH, timeout=10)
                    if console
                    else None
                )
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code < 300:
                doc = answer.json()
                ids = doc.get("execution_ids") or [doc.get("execution_id")]
                for execution_id in filter(None, ids):
                    self.accepted.setdefault(execution_id, what)
                return
            if answer is not None and answer.status_code < 500:
                self.refused[answer.status_code] += 1
                return
            self.retries += 1
            wait = float(answer.headers.get("retry-after", 1)) if answer is not None else 1.0
            time.sleep(min(wait, 5.0))
        self.refused[0] += 1


def services_yaml(path: Path, prom_url: str, stack: Any) -> Path:
    path.write_text(
        "services:\n  demo-service:\n    environment: soak\n"
        "    windows: {baseline_s: 10, verify_s: 20, post_action_s: 5}\n"
        f"    prometheus: {{url: '{prom_url}', profile: demo-service, selector: 'service=\"demo-service\"', "
        "scrape_interval_s: 1}\n"
        f"    logs: {{type: jsonl, path: '{stack.log_file}'}}\n",
        encoding="utf-8",
    )
    return path


def alert_delivery(rng: random.Random, n: int) -> dict[str, Any]:
    now = time.time()
    alerts = []
    for i in range(rng.randint(1, 3)):
        name = f"SoakAlert{rng.randint(0, 5)}"
        alerts.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": name,
                    "service": "demo-service",
                    "severity": rng.choice(["warning", "critical"]),
                },
                "annotations": {"summary": "soak"},
                "startsAt": format_ts(now - rng.uniform(0, 30)),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1/graph",
                "fingerprint": f"{n:04x}{i:02x}",
            }
        )
    return {"version": "4", "status": "firing", "receiver": "console", "groupKey": f"soak-{n}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1",
            "truncatedAlerts": 0, "alerts": alerts}  # fmt: skip


def read_results(db: Path, accepted: dict[str, str]) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = {
            r["id"]: dict(r)
            for r in conn.execute("SELECT id, state, flow_id, labels, inputs FROM executions")
        }
        decided = {
            r[0]
            for r in conn.execute(
                "SELECT execution_id FROM task_runs WHERE task_id = 'decide' AND state = 'SUCCESS'"
            )
        }
        statuses = {
            r["execution_id"]: r["status"]
            for r in conn.execute("SELECT execution_id, status FROM deployments")
        }
        verdicts = {
            r["execution_id"]: r["verdict"]
            for r in conn.execute("SELECT execution_id, verdict FROM deployments")
        }
        delivered = {
            r["execution_id"]: r["status"]
            for r in conn.execute(
                "SELECT execution_id, status FROM inbound_deliveries WHERE execution_id IS NOT NULL"
            )
        }
        lost = [
            e
            for e in accepted
            if e not in rows or delivered.get(e) not in ("launched", "attached", "resolved")
        ]
        stuck = [
            e
            for e in accepted
            if e in rows and e not in decided and rows[e]["state"] in ("CREATED", "RUNNING")
        ]
        escalated = [e for e in accepted if statuses.get(e) == "escalated" or verdicts.get(e) == "ESCALATE"]
        by_deployment = Counter(
            json.loads(r["inputs"]).get("deployment_id")
            for r in rows.values()
            if r["flow_id"] == "devops-loop"
        )
        by_incident = Counter(
            json.loads(r["labels"]).get("incident")
            for r in rows.values()
            if r["flow_id"] == "incident-handler"
        )
        doubled = [k for k, n in (by_deployment + by_incident).items() if k and n > 1]
        states = Counter(rows[e]["state"] for e in accepted if e in rows)
    finally:
        conn.close()
    return {
        "integrity": integrity,
        "decided": [e for e in accepted if e in decided],
        "escalated": escalated,
        "lost": lost,
        "stuck": stuck,
        "doubled": doubled,
        "states": states,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic, at most 15 (default 10)")
    parser.add_argument("--settle", type=float, default=3.0, help="minutes left to settle (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    minutes = min(args.minutes, 15.0)
    rng = random.Random(args.seed)
    print(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"{minutes:g} min of traffic"
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        soak = Soak(Path(tmp))
        stack = start_demo_stack(soak.workdir / "stack", load_rps=20)
        prom = None
        try:
            targets = {
                "demo-service": [f"127.0.0.1:{stack.service_port}"],
                "deployer": [f"127.0.0.1:{stack.deployer_port}"],
            }
            prom = start_prometheus(soak.workdir / "prometheus", targets)
            prom_port = int(prom.url.rsplit(":", 1)[1])
            services = services_yaml(soak.workdir / "services.yaml", prom.url, stack)
            env = soak.env(services)
            soak.console = start_console_server(soak.workdir, "soak", **env)
            time.sleep(15)  # a baseline in Prometheus
            end = time.monotonic() + minutes * 60
            next_deploy = next_alert = time.monotonic()
            next_kill = time.monotonic() + 75
            next_prom = time.monotonic() + 100
            prom_back: float | None = None
            n = 0
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_deploy:
                    n += 1
                    version = LEAK if n % 3 == 0 else HEALTHY[n % 2]
                    try:
                        record = stack.deploy(version, by="soak")
                    except requests.RequestException:
                        record = {
                            "id": f"soak-{n}",
                            "version": version,
                            "at": format_ts(time.time()),
                            "by": "soak",
                        }
                    body = {
                        "service": "demo-service",
                        "version": version,
                        "previous_version": "v1.0.0",
                        "deployment_id": record["id"],
                        "deployed_at": record["at"],
                        "deployed_by": "soak",
                    }
                    soak.post("/api/deployments", body, f"deploy {version}")
                    next_deploy = now + rng.uniform(4, 8)
                if now >= next_alert:
                    n += 1
                    soak.post("/api/alerts", alert_delivery(rng, n), "alerts")
                    next_alert = now + rng.uniform(7, 13)
                if now >= next_kill and soak.console is not None:
                    os.kill(soak.console.proc.pid, signal.SIGKILL)
                    soak.console.proc.wait()
                    soak.console = None
                    soak.kills += 1
                    # started again a few seconds later, in the background: requests sent meanwhile get
                    # no answer and are sent again, as Alertmanager and CI would
                    threading.Thread(target=soak.restart, args=(env, rng.uniform(2, 6)), daemon=True).start()
                    next_kill = now + rng.uniform(60, 90)
                if prom_back is None and now >= next_prom:
                    prom.stop()
                    prom_back = now + rng.uniform(10, 20)
                if prom_back is not None and now >= prom_back:
                    prom = start_prometheus(soak.workdir / "prometheus", targets, port=prom_port)
                    soak.prometheus_restarts += 1
                    prom_back = None
                    next_prom = now + rng.uniform(80, 120)
                time.sleep(0.2)
            if prom_back is not None:
                prom = start_prometheus(soak.workdir / "prometheus", targets, port=prom_port)
                soak.prometheus_restarts += 1
            # settle: no new traffic; the accepted runs finish their windows
            while soak.console is None:  # a restart under way
                time.sleep(0.5)
            settle_end = time.monotonic() + args.settle * 60
            db = soak.workdir / "data" / "console.sqlite3"
            while time.monotonic() < settle_end and read_results(db, soak.accepted)["stuck"]:
                time.sleep(2)
        finally:
            if soak.console is not None:
                soak.console.stop()
            if prom is not None:
                prom.stop()
            stack.stop()
        results = read_results(soak.workdir / "data" / "console.sqlite3", soak.accepted)
    kinds = Counter(soak.accepted.values())
    print(f"console SIGKILLs: {soak.kills}; Prometheus restarts: {soak.prometheus_restarts}; "
          f"requests sent again after no answer or a 5xx: {soak.retries}; "
          f"refused (4xx, given up): {dict(soak.refused)}")  # fmt: skip
    print(f"accepted requests (runs): {len(soak.accepted)} {dict(kinds)}")
    print(f"decisions: {len(results['decided'])}; escalations: {len(results['escalated'])}; "
          f"final states: {dict(results['states'])}")  # fmt: skip
    print(f"lost: {len(results['lost'])}; doubled: {len(results['doubled'])}; "
          f"stuck: {len(results['stuck'])}; "
          f"integrity_check: {results['integrity']}")  # fmt: skip
    ok = (
        not results["lost"]
        and not results["stuck"]
        and not results["doubled"]
        and results["integrity"] == "ok"
    )
    print("RESULT:", "OK" if ok else f"FAILED lost={results['lost'][:5]} stuck={results['stuck'][:5]}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
