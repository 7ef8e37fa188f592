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


@pytest.fixture
def start_console(tmp_path: Path):
    """``start_console(*streamlit_options, **env)``: the console as a user runs it (see
    tests/browser_support.py)."""
    from tests.browser_support import start_console_server

    started = []

    def start(*args: str, **env: str):
        server = start_console_server(tmp_path, str(len(started)), *args, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium through Playwright; the test is skipped where it is absent."""
    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
