"""Fixtures every test area shares. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from console.settings import Settings
from tests.waiting import TIME_SCALE, patience

# The suite's property tests draw the same inputs on every run, so CI passes or fails on the code,
# never on the luck of a seed. `HYPOTHESIS_PROFILE=explore` draws fresh inputs (and
# `--hypothesis-seed=N` replays one run) to look for new failures; each found is kept as a test.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


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
        yield browser
        browser.close()


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
