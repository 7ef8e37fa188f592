"""Fixtures of the reliability area: a real console server (``streamlit run``) started with any
environment, Debian's headless Chromium through Playwright, the fake Kestra and the fake LLM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from console.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
KESTRA_USER = "admin@devops-loop.local"
# Sentinels: if either ever shows up in a page, a log or an exception message, a secret leaked.
KESTRA_PASSWORD_SENTINEL = "Kp-SENTINEL-7f3a9c1e5b"
TOGETHER_KEY_SENTINEL = "tg-SENTINEL-0d4e8b2a6c"
SCRUBBED_ENV = (
    "KESTRA_URL",
    "KESTRA_USERNAME",
    "KESTRA_PASSWORD",
    "KESTRA_TOKEN",
    "TOGETHER_API_KEY",
    "LLM_BASE_URL",
    "CONSOLE_MOCK_DATA_DIR",
    "APPROVAL_TIMEOUT_MINUTES",
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


@pytest.fixture
def start_console(tmp_path: Path) -> Iterator[Callable[..., ConsoleServer]]:
    """``start_console(**env)``: the console as a user runs it, on a free port, logging to a file."""
    started: list[ConsoleServer] = []

    def start(**env: str) -> ConsoleServer:
        port = free_port()
        data_dir = tmp_path / f"data-{len(started)}"
        full_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        full_env.update(
            {
                "CONSOLE_DATA_DIR": str(data_dir),
                "CONSOLE_SECRETS": str(tmp_path / "no-secrets.toml"),
                "PYTHONUNBUFFERED": "1",
                **env,
            }
        )
        log_path = tmp_path / f"streamlit-{len(started)}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"),
                    "--server.headless", "true",
                    "--server.fileWatcherType", "none",
                    "--server.port", str(port),
                    "--server.address", "127.0.0.1",
                    "--browser.gatherUsageStats", "false",
                    "--logger.level", "info",
                ],
                cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = ConsoleServer(f"http://127.0.0.1:{port}", data_dir, log_path, proc)
        started.append(server)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{server.url}/_stcore/health", timeout=1).text == "ok":
                    return server
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("streamlit did not start:\n" + server.log_text()[-2000:])
            time.sleep(0.2)

    yield start
    for server in started:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def fake_kestra(tmp_path: Path):
    from tests.kestra.fake_kestra import FakeKestra

    fake = FakeKestra(
        version="1.3.21",
        username=KESTRA_USER,
        password=KESTRA_PASSWORD_SENTINEL,
        settings=Settings(data_dir=tmp_path / "fake-kestra-data"),
    ).start()
    fake.deploy_dir(PROJECT_ROOT / "flows")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_llm():
    from tests.llm.fake_llm import FakeLLM

    with FakeLLM(api_key=TOGETHER_KEY_SENTINEL) as server:
        yield server


def wait_ready(page, timeout: float = 60_000) -> None:
    """The app is connected, its script has finished, and no skeleton is left."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_selector("[data-testid='stSkeleton']", state="detached", timeout=timeout)


def open_page(page, url: str, timeout: float = 60_000) -> float:
    """Navigate and wait until rendered; returns the seconds it took."""
    started = time.perf_counter()
    page.goto(url)
    wait_ready(page, timeout)
    return time.perf_counter() - started
