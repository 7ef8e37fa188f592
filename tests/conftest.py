"""Fixtures every test area shares. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MOCK_DATA = PROJECT_ROOT / "mock-data"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-engine settings with a private data directory and no LLM, no Kestra."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    return SHARED_DATA
