"""Fixtures of the reliability area: the fake Kestra and the fake LLM, and the secret sentinels.

The console server (``start_console``) and Chromium (``chromium``) fixtures are shared by every
area: tests/conftest.py and tests/browser_support.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.settings import Settings
from tests.browser_support import PROJECT_ROOT

KESTRA_USER = "admin@devops-loop.local"
# Sentinels: if either ever shows up in a page, a log or an exception message, a secret leaked.
KESTRA_PASSWORD_SENTINEL = "Kp-SENTINEL-7f3a9c1e5b"
TOGETHER_KEY_SENTINEL = "tg-SENTINEL-0d4e8b2a6c"


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
