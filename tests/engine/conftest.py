"""Fixtures for the engine area: a store, engines (threaded and synchronous) and the approval service
on a private data directory, and identities."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import Execution, State
from console.engines.embedded.runner import EmbeddedEngine
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Settings
from console.storage import Store

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
def fast_expiry_settings(settings: Settings) -> Settings:
    return replace(settings, approval_timeout_minutes=0.01)  # 0.6 s


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
    approval = engine.store.approval_for_execution(execution.id)
    assert approval is not None
    return execution, approval
