"""Fixtures every test area shares. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

import tests.properties  # noqa: F401  (loads the property tests' hypothesis profile)
from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import Execution, State
from console.engines.embedded.runner import EmbeddedEngine
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Secret, Settings
from console.storage import Store
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra
from tests.waiting import TIME_SCALE, patience


def scan_streamlit_components_once() -> None:
    """Every new ``AppTest`` scans the metadata of every installed distribution for Streamlit
    components (about 0.2 CPU-s, half of drawing a page; ``streamlit run`` does it once at start).
    The installed packages do not change during a run, so each test process scans once."""
    from streamlit.components.v2 import manifest_scanner

    scan = getattr(manifest_scanner, "scan_component_manifests", None)
    if scan is not None and not hasattr(scan, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.cache(scan)


scan_streamlit_components_once()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """``TEST_TIME_SCALE`` raises pytest-timeout's per-test limit too (unless ``--timeout`` or
    ``PYTEST_TIMEOUT`` sets one): it reads ``PYTEST_TIMEOUT`` before the ini file's ``timeout``."""
    ini = config.getini("timeout")
    if TIME_SCALE != 1 and ini and "PYTEST_TIMEOUT" not in os.environ:
        os.environ["PYTEST_TIMEOUT"] = f"{float(ini) * TIME_SCALE:g}"


PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MOCK_DATA = PROJECT_ROOT / "mock-data"


LONG_RUNNING = ("live", "evidence", "browser", "slow")
"""Markers of the tests that take seconds to minutes of wall-clock time (real processes, windows,
a browser): an xdist worker starts them first, so none is left alone at the end of the run."""


def shares_module_fixtures(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture made once per module (module scope, or session scope
    defined in the test module itself: a live stack, a seeded console, a browser)."""
    info = getattr(item, "_fixtureinfo", None)
    for name in info.names_closure if info is not None else ():
        defs = info.name2fixturedefs.get(name)
        if not defs:
            continue
        fixture = defs[-1]
        if fixture.scope == "module" or (fixture.scope == "session" and fixture.baseid.endswith(".py")):
            return True
    return False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """How ``--dist loadgroup`` (pyproject.toml) shares the tests out, on each xdist worker:

    - a module's tests that share a fixture made once per module stay on one worker (their
      ``xdist_group`` is the module), so the fixture is made once, not once per worker: a live
      stack, a seeded console server, a Chromium;
    - the long-running tests (:data:`LONG_RUNNING`) come first, so they overlap the rest.

    xdist marks a test's group by a suffix on its node id ("...::test@group"). pytest-xdist 3.8
    writes it where pytest up to 9.1 kept the id; pytest 9.2 keeps it elsewhere, so every group
    was spread over the workers and each of them started the same live stack, ~70 s each
    (pytest-xdist issue 1386): the suffix is set here, unless xdist set it already.
    tests/test_xdist_groups.py checks both."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = {
            str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")
        }
        if shares_module_fixtures(item):
            names.add(item.nodeid.split("::")[0])
        if names and "@" not in item.nodeid.rsplit("]", 1)[-1]:
            item._id = NodeId.parse(f"{item.nodeid}@{'+'.join(sorted(names))}")
    items.sort(key=lambda item: not any(item.get_closest_marker(m) for m in LONG_RUNNING))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-engine settings with a private data directory and no LLM, no Kestra."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def approval_clock():
    """The approval service's now, moved by the test past a deadline (tests/clocks.py)."""
    from tests.clocks import ShiftedClock

    return ShiftedClock()


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


BROWSERS: list = []
"""The Chromium of this worker, once a test asked for it (:func:`chromium`)."""


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium through Playwright, one per worker (each test opens its own
    context); the test is skipped where it is absent."""
    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # Playwright's default 30 s for an action or a wait, scaled like every other bound
        default_ms = patience(30) * 1000
        new_context, new_page = browser.new_context, browser.new_page

        def scaled_context(*args, **kwargs):
            context = new_context(*args, **kwargs)
            context.set_default_timeout(default_ms)
            return context

        def scaled_page(*args, **kwargs):
            page = new_page(*args, **kwargs)
            page.set_default_timeout(default_ms)
            return page

        browser.new_context, browser.new_page = scaled_context, scaled_page
        BROWSERS.append(browser)
        yield browser
        BROWSERS.remove(browser)
        browser.close()


@pytest.fixture(autouse=True)
def close_the_tests_browser_contexts() -> Iterator[None]:
    """Close the browser contexts (and their pages) a test opened and left open, when it ends: a
    page left open keeps polling its console, or retrying one that has stopped, for the rest of the
    worker's life. A context a module's fixture holds was opened before the test and stays."""
    before = [context for browser in BROWSERS for context in browser.contexts]
    yield
    for browser in BROWSERS:
        for context in browser.contexts:
            if context not in before:
                context.close()


def logs_only_service(directory: Path, *, lines: int = 1) -> tuple[Path, float]:
    """A services file naming demo-service with only a JSON-lines log source (``lines`` lines, the
    last a second ago) and windows of a fraction of a second: a live run that needs no process.
    Returns (the services file, now as Unix seconds)."""
    import json
    import time

    from console.telemetry.times import format_ts

    now = time.time()
    logs = directory / "demo-service.log"
    logs.write_text(
        "".join(
            json.dumps({"ts": format_ts(now - lines + i), "level": "INFO", "message": "GET /"}) + "\n"
            for i in range(lines)
        ),
        encoding="utf-8",
    )
    services = directory / "services.yaml"
    services.write_text(
        "services:\n  demo-service:\n    environment: live-demo\n"
        "    windows: {baseline_s: 5, verify_s: 0.3, post_action_s: 0.1}\n"
        f"    logs: {{type: jsonl, path: {logs}}}\n",
        encoding="utf-8",
    )
    return services, now


GENERATOR = PROJECT_ROOT / "mock-data" / "generate.py"
DEPLOYED_AT = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def load_generator() -> ModuleType:
    name = "mock_data_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen() -> ModuleType:
    return load_generator()


def series(values, start_min: int = -60, deployed_at: datetime = DEPLOYED_AT) -> list[list]:
    """[[iso, value], ...] at 1-minute steps starting ``start_min`` minutes from the deploy."""
    out = []
    for i, v in enumerate(values):
        t = deployed_at + timedelta(minutes=start_min + i)
        out.append([t.isoformat().replace("+00:00", "Z"), float(v)])
    return out


def snapshot_doc(metrics: dict[str, list], logs: list[dict] | None = None, **deployment) -> dict:
    dep = {
        "id": "deploy-test",
        "service": "svc",
        "version": "v2",
        "previous_version": "v1",
        "deployed_at": DEPLOYED_AT.isoformat().replace("+00:00", "Z"),
    }
    dep.update(deployment)
    return {"deployment": dep, "metrics": metrics, "logs": logs or []}


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
                cwd=PROJECT_ROOT,
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
