"""What the browser tests of every area share: the console started as a user runs it
(``streamlit run server.py``: the pages and the HTTP API on one free port, output to a file),
Debian's Chromium, and waits for a Streamlit run to finish. The fixtures ``start_console`` and
``chromium`` are in tests/conftest.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.waiting import patience

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's package; a browser is never downloaded
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Configuration a developer's shell may carry that would change what a test console talks to.
SCRUBBED_ENV = (
    "KESTRA_URL",
    "KESTRA_USERNAME",
    "KESTRA_PASSWORD",
    "KESTRA_TOKEN",
    "TOGETHER_API_KEY",
    "LLM_BASE_URL",
    "CONSOLE_MOCK_DATA_DIR",
    "APPROVAL_TIMEOUT_MINUTES",
    "CONSOLE_SERVICES_FILE",
    "CONSOLE_API_TOKEN",
    "CONSOLE_API_TOKEN_NAME",
    "CONSOLE_API_TOKEN_ROLE",
    "CONSOLE_API_RATE_PER_MINUTE",
    "CONSOLE_API_BURST",
    "CONSOLE_API_MAX_BODY_BYTES",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ConsoleServer:
    url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_console_server(workdir: Path, name: str, *args: str, **env: str) -> ConsoleServer:
    """Start the console with a private data dir and no secrets file; return once it is healthy.
    ``args`` are more ``streamlit run`` options (a repeated option's last value wins)."""
    port = free_port()
    data_dir = workdir / f"data-{name}"
    full_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    full_env.update(
        {
            "CONSOLE_DATA_DIR": str(data_dir),
            "CONSOLE_SECRETS": str(workdir / "no-secrets.toml"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
    )
    log_path = workdir / f"streamlit-{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "server.py"),
                "--server.headless", "true",
                "--server.fileWatcherType", "none",
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false",
                "--logger.level", "info",
                *args,
            ],
            cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = ConsoleServer(f"http://127.0.0.1:{port}", data_dir, log_path, proc)
    deadline = time.monotonic() + patience(60)
    while True:
        try:
            if requests.get(f"{server.url}/_stcore/health", timeout=1).text == "ok":
                return server
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("streamlit did not start:\n" + server.log_text()[-2000:])
        time.sleep(0.2)


def wait_ready(page, timeout: float = patience(60) * 1000) -> None:
    """The app is connected, its script has finished, and no skeleton is left."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_selector("[data-testid='stSkeleton']", state="detached", timeout=timeout)


def open_page(page, url: str, timeout: float = patience(60) * 1000) -> float:
    """Navigate and wait until rendered; returns the seconds it took."""
    started = time.perf_counter()
    page.goto(url)
    wait_ready(page, timeout)
    return time.perf_counter() - started
