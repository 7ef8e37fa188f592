"""The approval card of a watched live deployment (AppTest; the stand-in deployer, the embedded
engine): it names the rollback target and why (the revision history's known-good version, the
announced known-bad previous version noted), reads the service now, and once the service moved on
it is superseded: Approve off with the reason. The browser test on the live stack
(tests/live/test_live_demo_browser.py) sees the strip refresh on its own."""

from __future__ import annotations

import pytest

from console.engines.embedded.runner import EmbeddedEngine
from console.loop import steps
from console.settings import load_settings
from tests.executors.servers import run_deployer
from tests.parity.test_safety_parity import TOKEN, announced, seed_history, services_yaml, watched_collect

pytestmark = pytest.mark.safety


def test_the_card_names_the_target_and_turns_approve_off_once_superseded(app_env, tmp_path, monkeypatch):
    from tests.ui.conftest import make_app, texts, wait_for

    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)
    monkeypatch.setattr(steps, "collect", watched_collect)
    with run_deployer(TOKEN, version="v1.0.0", previous_version=None) as deployer:
        monkeypatch.setenv(
            "CONSOLE_SERVICES_FILE", str(services_yaml(tmp_path / "svc" / "s.yaml", deployer.url))
        )
        monkeypatch.setenv("CONSOLE_DEMO_IDENTITY", "1")  # this console acts for real: demo names on purpose
        engine = EmbeddedEngine(load_settings(), recover=False)
        try:
            seed_history(engine.store)
            record = deployer.deploy("v1.2.0-leak")
            execution_id = engine.launch_deployment(
                announced(record), triggered_by="alice", source="deployer"
            )
            wait_for(lambda: engine.get_execution(execution_id).state.value == "PAUSED")
            approval_id = engine.store.approvals.for_execution(execution_id)["id"]

            at = make_app("bob", "approver", "approvals")
            assert not at.exception
            markdown = " ".join(texts(at, "markdown"))
            assert "**Rollback target:** v1.0.0: healthy, verified 10:02 for 45 s" in markdown
            assert "Roll back demo-service v1.2.0-leak → v1.0.0" in markdown
            assert any(c.startswith("the announced previous version v1.5.0-crashloop is known-bad") for c in
                       [t.removeprefix(":material/warning: ") for t in texts(at, "caption")])  # fmt: skip
            assert "running v1.2.0-leak · ready · 0 crash restarts" in markdown  # the strip: now
            assert not at.button(key=f"approve_{approval_id}").disabled

            deployer.deploy("v1.1.0")  # the service moves on while the card is open
            at.run()
            assert any("this approval is superseded and cannot be approved" in e for e in texts(at, "error"))
            assert at.button(key=f"approve_{approval_id}").disabled
            off = [c for c in texts(at, "caption") if "Approve is off" in c]
            assert off and "v1.1.0 is running now since" in off[0]
            assert not at.button(key=f"reject_{approval_id}").disabled  # rejecting still decides
        finally:
            engine.close()
