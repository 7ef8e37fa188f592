"""How pages stay current (ui/refresh.py), from the messages a page run sends the browser: each page
has one poll on a timer however many digests it watches (every fragment run costs the browser a
redraw pass over the page), and the Scenarios page's cards are drawn again every second only while
a run analyses; idle, the poll redraws them when the store's runs change. That a change made
elsewhere shows on its own is the browser tests' (tests/ui/test_browser.py,
tests/ui/test_session_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.testing.v1 import local_script_runner

from console.domain.vocabulary import DeploymentStatus
from console.engines.embedded.runner import EmbeddedEngine
from console.storage.deployments import Deployments
from tests.ui.conftest import make_app
from ui import refresh


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The interval of every fragment timer (``auto_rerun``) the app's runs asked the browser for."""
    seen: list[float] = []
    original = local_script_runner.LocalScriptRunner.forward_msgs

    def forward_msgs(self) -> list[ForwardMsg]:
        msgs = original(self)
        seen.extend(m.auto_rerun.interval for m in msgs if m.WhichOneof("type") == "auto_rerun")
        return msgs

    monkeypatch.setattr(local_script_runner.LocalScriptRunner, "forward_msgs", forward_msgs)
    yield seen


def page_timers(timers: list[float], page: str) -> list[float]:
    timers.clear()
    at = make_app(page=page)
    assert not at.exception, at.exception
    timers.clear()  # the shell's first run (the default page) is not this page's
    at.run()
    return sorted(timers)


def analysing(engine: EmbeddedEngine, scenario: str) -> None:
    """A run of ``scenario`` that is analysing, as the store shows it."""
    with engine.store.db.write() as conn:
        Deployments.insert_in(
            conn,
            deployment_id=f"deploy-{scenario}-analysing",
            ref=f"ref-{scenario}",
            service="svc",
            version="v2",
            previous_version="v1",
            environment="production",
            deployed_at="2026-12-08T00:00:00Z",
            deployed_by="seed",
            execution_id=f"ex-{scenario}",
            scenario=scenario,
            status=DeploymentStatus.ANALYZING,
            engine="embedded",
            source="scenario",
        )


def test_each_page_polls_once_however_many_digests_it_watches(app_env, engine, timers):
    engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    analysing(engine, "memory-leak")  # the Deployments page watches its queue position as well
    for page in ("overview", "deployments", "executions", "metrics", "learning", "approvals"):
        assert page_timers(timers, page) == [refresh.EVERY_S], page


def test_idle_scenario_cards_wait_for_a_change_and_analysing_ones_redraw_every_second(
    app_env, engine, timers
):
    engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    assert page_timers(timers, "scenarios") == [refresh.EVERY_S]  # the poll only
    analysing(engine, "memory-leak")
    assert page_timers(timers, "scenarios") == [1.0, refresh.EVERY_S]  # the cards, and the poll
