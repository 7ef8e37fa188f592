"""Fixtures for the engine area: a store, engines (threaded and synchronous) and the approval service
on a private data directory, and identities."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import Execution, State
from console.engines.embedded.runner import EmbeddedEngine
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Secret, Settings
from console.storage import Store
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra

PROJECT_ROOT_DIR = Path(__file__).resolve().parents[2]
ROLLBACK_SCENARIO = "memory-leak"  # expected ROLLBACK: a HIGH-risk rollback needs one approver
HEALTHY_SCENARIO = "healthy-hotfix"  # expected CONTINUE: only LOW-risk actions, confident


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.db_path)
    yield s
    s.close()


@pytest.fixture
def runtime(settings: Settings, store: Store) -> Iterator[EmbeddedRuntime]:
    """The engine and its approval service as the console wires them: a background worker pool."""
    rt = embedded_runtime(settings, store, max_workers=2)
    yield rt
    rt.close()


@pytest.fixture
def engine(runtime: EmbeddedRuntime) -> EmbeddedEngine:
    return runtime.engine


@pytest.fixture
def approvals(runtime: EmbeddedRuntime) -> ApprovalService:
    return runtime.approvals


@pytest.fixture
def bob() -> Identity:
    return Identity("bob", Role.APPROVER)


@pytest.fixture
def carol() -> Identity:
    return Identity("carol", Role.ADMIN)


@pytest.fixture
def viewer() -> Identity:
    return Identity("victor", Role.VIEWER)


def run_paused(engine: EmbeddedEngine, scenario: str = ROLLBACK_SCENARIO) -> tuple[Execution, dict]:
    """Run a scenario that needs approval; return the PAUSED execution and its approval row."""
    execution = engine.run_sync(scenario=scenario, triggered_by="alice", timeout=30)
    assert execution.state == State.PAUSED, engine.execution_logs(execution.id)
    approval = engine.store.approvals.for_execution(execution.id)
    assert approval is not None
    return execution, approval


@pytest.fixture
def cli(tmp_path):
    """``cli(*args)``: ``python -m console`` as a user runs it, on a private data dir with no secrets,
    no Kestra and no LLM (``cli.env`` is that environment)."""
    env = {
        **os.environ,
        "CONSOLE_DATA_DIR": str(tmp_path / "data"),
        "CONSOLE_SECRETS": str(tmp_path / "none.toml"),
    }
    for name in ("TOGETHER_API_KEY", "KESTRA_URL", "CONSOLE_SERVICES_FILE", "CONSOLE_API_TOKEN"):
        env.pop(name, None)

    class Cli:
        data_dir = env["CONSOLE_DATA_DIR"]
        secrets = env["CONSOLE_SECRETS"]

        def __init__(self) -> None:
            self.env = env

        def __call__(self, *args, stdin=None):
            return subprocess.run(
                [sys.executable, "-m", "console", *args],
                cwd=PROJECT_ROOT_DIR,
                env=env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=120,
            )

    return Cli()


@pytest.fixture
def kestra(tmp_path) -> Iterator[FakeKestra]:
    """The project's fake Kestra (1.3) with the flows deployed."""
    fake = FakeKestra(
        version="1.3.21", username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake-data")
    ).start()
    fake.deploy_dir(FLOWS_DIR)
    try:
        yield fake
    finally:
        fake.stop()


def kestra_settings(kestra: FakeKestra, tmp_path: Path) -> Settings:
    """The console's settings on the fake Kestra, with a private data dir."""
    return Settings(
        data_dir=tmp_path / "console",
        kestra_url=kestra.url,
        kestra_username=USER,
        kestra_password=Secret(PASSWORD),
        kestra_timeout_s=2.0,
    )
