"""What the console's records say about the versions around a deploy (console/loop/baselines.py):
bad versions, the last known-good one, an incident open at the deploy; scenarios never count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.domain.models import format_time
from console.loop.baselines import history_from_rows, read_context
from console.settings import Settings
from console.storage import Store
from tests.loop.conftest import record_run

NOW = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def row(version: str, minutes: float, verdict: str | None, **extra: object) -> dict:
    at = format_time(NOW - timedelta(minutes=minutes))
    return {"version": version, "deployed_at": at, "verdict": verdict, "source": "deployer", "scenario": None,
            "simulated": 0, **extra}  # fmt: skip


def test_bad_and_known_good_versions_from_real_runs_only():
    rows = [  # newest first
        row("v1.2.0-leak", 2, "ROLLBACK"),
        row("v1.1.0", 10, "CONTINUE", measured_status="not_resolved"),  # healthy at first, not since
        row("v1.0.1", 20, "CONTINUE"),
        row("v9-demo", 25, "CONTINUE", scenario="memory-leak", source="scenario"),
        row("v1.0.0", 30, "CONTINUE"),
    ]
    context = history_from_rows(rows, [], version="v1.0.0", deployed_at=NOW.timestamp())
    assert context.history.bad_versions == ("v1.2.0-leak",)
    assert context.history.known_good_version == "v1.0.1" and context.known_good["version"] == "v1.0.1"
    assert context.history.open_incident is None


def test_an_incident_open_before_the_deploy_counts_one_opened_after_it_does_not():
    before = {
        "id": "inc-1",
        "summary": "upstream payments failing",
        "opened_at": format_time(NOW - timedelta(minutes=3)),
    }
    after = {"id": "inc-2", "summary": "memory", "opened_at": format_time(NOW + timedelta(minutes=1))}
    assert (
        history_from_rows([], [after], version="v2", deployed_at=NOW.timestamp()).history.open_incident
        is None
    )
    context = history_from_rows([], [after, before], version="v2", deployed_at=NOW.timestamp())
    assert context.history.open_incident == "upstream payments failing"


def test_the_context_is_read_from_the_store(tmp_path):
    settings = Settings(data_dir=tmp_path)
    store = Store(settings.db_path)
    try:
        for i, (version, verdict) in enumerate((("v1", "CONTINUE"), ("v2", "ROLLBACK"))):
            at = format_time(NOW - timedelta(minutes=10 - i))
            record_run(store, i, service="shop-api", version=version, at=at, verdict=verdict)
    finally:
        store.close()
    context = read_context("shop-api", "v3", NOW.timestamp(), settings)
    assert context.history.bad_versions == ("v2",) and context.history.known_good_version == "v1"
    assert context.known_good["ref"] == "d-0"
