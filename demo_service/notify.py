"""Deployment announcements: POSTed in the background, with a bounded retry, never blocking a deploy.

One worker thread and one bounded queue per URL, so a slow receiver delays only its own
announcements. The bearer token is sent, never logged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from demo_service import SERVICE_NAME

ATTEMPTS = 3
RETRY_DELAYS_S = (0.5, 1.5)  # between attempts 1-2 and 2-3
TIMEOUT_S = 3.0
QUEUE_SIZE = 50


def safe_url(url: str) -> str:
    """The URL without user info or query string, for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def announcement(record: dict[str, Any], environment: str) -> dict[str, Any]:
    """The payload the loop's trigger expects (README "HTTP API": POST /api/deployments)."""
    return {
        "service": SERVICE_NAME,
        "version": record["version"],
        "previous_version": record["previous_version"],
        "environment": environment,
        "deployed_by": record["by"],
        "deployed_at": record["at"],
        "deployment_id": record["id"],
        "source": "demo-deployer",
    }


class _UrlWorker(threading.Thread):
    def __init__(self, url: str, token: str | None, log: Callable[[str, str], None], stop: threading.Event):
        super().__init__(name="notify", daemon=True)
        self.url = url
        self.shown = safe_url(url)
        self.token = token
        self.log = log
        self.stop = stop
        self.jobs: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)
        self.session = requests.Session()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                payload = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            self.send(payload)

    def send(self, payload: dict[str, Any]) -> bool:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt and self.stop.wait(RETRY_DELAYS_S[attempt - 1]):
                return False
            try:
                response = self.session.post(
                    self.url, json=payload, headers=headers, timeout=TIMEOUT_S, allow_redirects=False
                )
            except requests.RequestException as exc:
                problem = type(exc).__name__
                continue
            if 200 <= response.status_code < 300:
                deployment = payload["deployment_id"]
                self.log("INFO", f"deployment {deployment} announced to {self.shown} (attempt {attempt + 1})")
                return True
            problem = f"HTTP {response.status_code}"
        self.log(
            "WARN",
            f"deployment {payload['deployment_id']} not announced to {self.shown} "
            f"after {ATTEMPTS} attempts: {problem}",
        )
        return False


class Announcer:
    """Fire-and-forget delivery of announcements to every configured URL."""

    def __init__(
        self,
        urls: list[str],
        token: str | None,
        environment: str,
        log: Callable[[str, str], None],
    ) -> None:
        self.environment = environment
        self.log = log
        self._stop = threading.Event()
        self._workers = [_UrlWorker(url, token, log, self._stop) for url in urls]
        for worker in self._workers:
            worker.start()

    def announce(self, record: dict[str, Any]) -> None:
        payload = announcement(record, self.environment)
        for worker in self._workers:
            try:
                worker.jobs.put_nowait(payload)
            except queue.Full:
                self.log("WARN", f"deployment {record['id']} not announced to {worker.shown}: queue full")

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=TIMEOUT_S + 1)
