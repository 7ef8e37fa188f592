"""The alert path on real parts, for the live test and benchmarks/bench_alerts.py: the demo service
under load, Debian's Prometheus scraping it every second with livestack/prometheus/alerts.yml, Debian's
Alertmanager routing to the console's ``/api/alerts`` with a bearer token, and the console as a real
server (``streamlit run server.py``) with bob, a password-signed-in approver, and a chat-ops token
acting for people.

    stack = AlertStack.start(tmp_path)
    try:
        stack.wait_scraped()
        stack.demo.deploy("v1.2.0-leak", by="alice")   # the rule fires ~12 s later
        ...
    finally:
        stack.stop()                                   # every process, also on failure
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

from console.access.auth import hash_password
from console.access.tokens import hash_token
from console.loop import revisions
from console.storage import Store
from demo_service.testing import DemoStack, start_demo_stack
from livestack.processes import (
    ALERTS_FILE,
    RULES_FILE,
    AlertmanagerProcess,
    PrometheusProcess,
    free_port,
    start_alertmanager,
    start_prometheus,
)
from tests.browser_support import ConsoleServer, start_console_server
from tests.waiting import wait_until

ALERTMANAGER_TOKEN = "am-token-0123456789abcdef"
CHATOPS_TOKEN = "chatops-token-0123456789abcdef"
DEPLOYER_TOKEN = "deployer-token-0123456789abcdef"
CHATOPS = {"Authorization": f"Bearer {CHATOPS_TOKEN}"}
WINDOWS = {"baseline_s": 10, "verify_s": 20, "post_action_s": 4}

T = TypeVar("T")


def wait_for(what: str, predicate: Callable[[], T], timeout: float = 60.0, every: float = 0.2) -> T:
    return wait_until(predicate, timeout, step=every, what=what)


def secrets_toml(path: Path) -> Path:
    """bob, an approver who signs in with a password, and a chat-ops token that acts for people."""
    path.write_text(
        "[console_auth.users.bob]\n"
        f'password_hash = "{hash_password("bob-password-123")}"\n'
        'role = "approver"\n\n'
        "[console_api.tokens.chatops]\n"
        f'sha256 = "{hash_token(CHATOPS_TOKEN)}"\n'
        'role = "approver"\n'
        'identity = "chatops-bot"\n'
        "act_for_users = true\n",
        encoding="utf-8",
    )
    return path


def services_doc(prometheus: PrometheusProcess, demo: DemoStack) -> dict[str, Any]:
    return {
        "services": {
            "demo-service": {
                "environment": "live-demo",
                "windows": WINDOWS,
                "prometheus": {
                    "url": prometheus.url,
                    "profile": "demo-service",
                    "selector": 'service="demo-service"',
                    "scrape_interval_s": 1,
                },
                "logs": {"type": "jsonl", "path": str(demo.log_file)},
                "executor": {
                    "type": "demo-service",
                    "url": demo.deployer_url,
                    "token_env": "DEMO_DEPLOYER_TOKEN",
                    "verify_timeout_s": 15,
                },
            }
        }
    }


@dataclass
class AlertStack:
    demo: DemoStack
    prometheus: PrometheusProcess
    console: ConsoleServer
    manager: AlertmanagerProcess

    @classmethod
    def start(cls, workdir: Path) -> AlertStack:
        demo = start_demo_stack(workdir / "stack", load_rps=20, token=DEPLOYER_TOKEN)
        started: list[Any] = []
        try:
            manager_port = free_port()
            prometheus = start_prometheus(
                workdir / "prometheus",
                {
                    "demo-service": [f"127.0.0.1:{demo.service_port}"],
                    "deployer": [f"127.0.0.1:{demo.deployer_port}"],
                },
                rule_files=(RULES_FILE, ALERTS_FILE),
                alertmanager_url=f"http://127.0.0.1:{manager_port}",
            )
            started.append(prometheus)
            services = workdir / "services.yaml"
            services.write_text(yaml.safe_dump(services_doc(prometheus, demo)), encoding="utf-8")
            console = start_console_server(
                workdir,
                "alerts",
                CONSOLE_API_TOKEN=ALERTMANAGER_TOKEN,  # Alertmanager's: a viewer, it only announces
                CONSOLE_API_TOKEN_NAME="alertmanager",
                CONSOLE_SECRETS=str(secrets_toml(workdir / "secrets.toml")),
                CONSOLE_SERVICES_FILE=str(services),
                DEMO_DEPLOYER_TOKEN=DEPLOYER_TOKEN,
                LIVE_POLL_S="1",
            )
            started.append(console)
            manager = start_alertmanager(
                workdir / "alertmanager",
                f"{console.url}/api/alerts",
                token=ALERTMANAGER_TOKEN,
                port=manager_port,
            )
        except BaseException:
            for part in reversed(started):
                part.stop()
            demo.stop()
            raise
        return cls(demo, prometheus, console, manager)

    def store(self) -> Store:
        return Store(self.console.data_dir / "console.sqlite3")

    def mark_known_good(self, version: str = "v1.0.0") -> None:
        """This console never watched a deploy of demo-service: an operator says ``version`` is
        known-good (else an incident has no rollback target and escalates without one)."""
        marked = revisions.event(
            "demo-service", version, revisions.MARKED_GOOD, "2026-01-01T00:00:00Z", "ran for a year",
            source="operator", actor="carol",
        )  # fmt: skip
        store = self.store()
        try:
            with store.db.write() as conn:
                store.revisions.add_in(conn, [marked])
        finally:
            store.close()

    def wait_scraped(self, timeout: float = 30.0) -> None:
        """Until Prometheus has scraped the service (its first scrape comes a few seconds after it
        is ready)."""

        def scraped() -> bool:
            answer = requests.get(f"{self.prometheus.url}/api/v1/query", params={"query": "up"}, timeout=5)
            return bool(answer.json()["data"]["result"])

        wait_for("the first scrape", scraped, timeout)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.console.url}{path}", headers=CHATOPS, timeout=10, **kwargs)

    def decide(self, approval_id: str, actor: str, comment: str = "leak confirmed") -> requests.Response:
        return self.api(
            "POST",
            f"/api/approvals/{approval_id}/decision",
            json={"decision": "approve", "comment": comment, "actor": actor},
        )

    def stop(self) -> None:
        for part in (self.manager, self.console, self.prometheus):
            try:
                part.stop()
            except Exception:  # stop the rest whatever happens to one
                pass
        self.demo.stop()
