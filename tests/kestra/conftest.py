"""Fixtures of the Kestra area: a fake Kestra server (1.3 or 2.x) and a real client talking to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.engines.kestra.client import KestraClient
from console.settings import Settings
from tests.kestra.fake_kestra import FakeKestra

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FLOWS_DIR = PROJECT_ROOT / "flows"
USER = "admin@devops-loop.local"
PASSWORD = "Fake-Kestra-Pass1"


def _fake(tmp_path: Path, version: str) -> Iterator[FakeKestra]:
    fake = FakeKestra(
        version=version, username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake-data")
    ).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeKestra]:
    """Kestra 1.3 LTS, no flows deployed yet."""
    yield from _fake(tmp_path, "1.3.21")


@pytest.fixture
def fake2(tmp_path: Path) -> Iterator[FakeKestra]:
    """Kestra 2.0 (renamed endpoints, light search items, outputs endpoint)."""
    yield from _fake(tmp_path, "2.0.0")


@pytest.fixture
def client(fake: FakeKestra) -> KestraClient:
    return KestraClient(fake.url, username=USER, password=PASSWORD, timeout=2.0, backoff_s=0.05)


@pytest.fixture
def client2(fake2: FakeKestra) -> KestraClient:
    return KestraClient(fake2.url, username=USER, password=PASSWORD, timeout=2.0, backoff_s=0.05)


@pytest.fixture
def loaded(fake: FakeKestra) -> FakeKestra:
    fake.deploy_dir(FLOWS_DIR)
    return fake


@pytest.fixture
def loaded2(fake2: FakeKestra) -> FakeKestra:
    fake2.deploy_dir(FLOWS_DIR)
    return fake2
