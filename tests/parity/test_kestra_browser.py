"""The console on Kestra in real headless Chromium: runs made in Kestra (the project's fake Kestra
server) show on Overview, Deployments and Metrics through the console's mirror, as they would on the
embedded engine. One page load (Deployments); Overview and Metrics are opened from the menu."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.domain.executions import State
from console.engines.kestra.backend import KestraBackend
from console.settings import Secret, Settings
from tests.browser_support import CHROMIUM, wait_ready
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra
from tests.waiting import patience

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parity,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def open_from_menu(page, title: str) -> None:
    """Click ``title`` in the sidebar menu; return once that page has drawn its title and finished."""
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_test_id("stMain").locator("h1").filter(has_text=title).wait_for(timeout=patience(30) * 1000)
    wait_ready(page)


def test_kestra_runs_show_on_the_pages(start_console, chromium, tmp_path: Path):
    fake = FakeKestra(username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake")).start()
    fake.deploy_dir(FLOWS_DIR)
    try:
        backend = KestraBackend(
            Settings(
                data_dir=tmp_path / "launcher",
                kestra_url=fake.url,
                kestra_username=USER,
                kestra_password=Secret(PASSWORD),
            )
        )
        ids = [backend.launch_scenario(s, "alice") for s in ("memory-leak", "healthy-hotfix")]
        deadline = time.monotonic() + patience(60)
        while any(backend.get_execution(i).state not in (State.PAUSED, State.SUCCESS) for i in ids):
            assert time.monotonic() < deadline, "the fake Kestra did not run the scenarios"
            time.sleep(0.1)

        console = start_console(
            KESTRA_URL=fake.url,
            KESTRA_USERNAME=USER,
            KESTRA_PASSWORD=PASSWORD,
            KESTRA_MIRROR_INTERVAL_S="1",
            CONSOLE_DEMO_IDENTITY="1",
        )
        page = chromium.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.goto(f"{console.url}/deployments")
        wait_ready(page)
        grid = page.get_by_test_id("stDataFrame")
        grid.wait_for(timeout=patience(20) * 1000)
        cells = page.locator("td[role=gridcell]")  # the grid's accessible copy of its canvas
        for text in ("v1.2.3", "v1.2.4-hotfix", "awaiting approval", "healthy"):
            cells.filter(has_text=text).first.wait_for(state="attached", timeout=patience(20) * 1000)

        open_from_menu(page, "Overview")
        tile = page.get_by_test_id("stMetric").filter(has_text="Deployments today")
        assert tile.get_by_test_id("stMetricValue").inner_text(timeout=patience(10) * 1000) == "2"

        open_from_menu(page, "Metrics")
        page.get_by_text("Memory utilisation").first.wait_for(timeout=patience(20) * 1000)
        assert page.locator(".js-plotly-plot").count() >= 6
        assert "Traceback" not in page.content()
    finally:
        fake.stop()
