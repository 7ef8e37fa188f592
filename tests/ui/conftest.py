"""UI test fixtures: a private data directory, clean Streamlit caches, a seeded store, AppTest helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from console.access.auth import hash_password
from console.domain.executions import Execution
from console.engines.embedded.runner import EmbeddedEngine
from console.presentation.formatting import plain
from console.settings import Settings, load_settings
from tests.waiting import patience, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP = str(PROJECT_ROOT / "app.py")
PAGES = ["overview", "deployments", "approvals", "executions", "metrics", "scenarios", "learning", "settings"]
TIMEOUT = patience(30)  # seconds an AppTest run may take


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Point the console at an empty data dir, with no secrets file, no Kestra, no LLM."""
    monkeypatch.setenv("CONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONSOLE_SECRETS", str(tmp_path / "no-secrets.toml"))
    for name in ("KESTRA_URL", "TOGETHER_API_KEY", "AUTO_APPROVE_CONFIDENCE", "APPROVAL_TIMEOUT_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield load_settings()
    from ui.services import get_services

    get_services().close(wait=True)  # the app's engine and expiry timer: stop their threads
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def engine(app_env: Settings) -> Iterator[EmbeddedEngine]:
    """A second engine on the same database (the app has its own): used to seed and to observe."""
    eng = EmbeddedEngine(app_env, recover=False)
    yield eng
    eng.close()


@pytest.fixture
def paused_leak(engine: EmbeddedEngine) -> Execution:
    """The memory-leak scenario run up to its approval pause (requested by the deployer, ci-bot)."""
    execution = engine.run_sync(scenario="memory-leak", triggered_by="seed", timeout=60)
    assert execution.state.value == "PAUSED"
    return execution


def make_app(name: str = "alice", role: str = "approver", page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["demo_name"] = name
    at.session_state["demo_role"] = role
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    return at


def crafted_reject(at: AppTest, approval_id: str) -> None:
    """A rejection the card's disabled button would not allow, through a crafted session state (AppTest
    cannot click a disabled button): what reaches the approval service is refused there."""
    at.session_state["approval_request"] = {"id": approval_id, "says": ""}
    at.run()
    at.text_area(key="approval_comment").input("crafted")
    at.button(key="approval_confirm").click().run()


def texts(at: AppTest, kind: str) -> list[str]:
    """The text of every element of a kind as the page shows it: Markdown escapes and the word
    joiners that stop autolinks taken out (see console.presentation.formatting.md_escape)."""
    return [plain(e.value) for e in getattr(at, kind)]


def password_of(name: str) -> str:
    return f"{name}-Pass-1"


def write_users(path: Path, **roles: str) -> Path:
    """A secrets.toml with one password user per ``name=role`` (password: :func:`password_of`)."""
    tables = [
        f'[console_auth.users."{name}"]\n'
        f'password_hash = "{hash_password(password_of(name), iterations=1000)}"\n'
        f'role = "{role}"\n'
        for name, role in roles.items()
    ]
    path.write_text("\n".join(tables))
    return path


def signed_in_app(name: str, page: str | None = None) -> AppTest:
    """The console with ``name`` signed in with a password (see :func:`write_users`)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.run()  # the first run's widget ids differ (no page chosen yet): typing into them is lost
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(password_of(name))
    at.button(key="sign_in").click().run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    return at


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, step: float = 0.1) -> object:
    return wait_until(predicate, timeout, step=step)


def series(values: object) -> list:
    """A plotly trace's values as a list: figures read back from AppTest's JSON hold numeric arrays
    as ``{"dtype", "bdata"}`` (base64 of the raw array), lists stay lists."""
    import base64

    import numpy as np

    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values) if values is not None else []
