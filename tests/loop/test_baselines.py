"""What the console knows of the versions around a deploy (console/loop/baselines.py), from the
service's revision history: known-bad versions, the known-good one and its measured window, an
incident open at the deploy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.domain.models import format_time
from console.loop import revisions
from console.loop.baselines import context_from_history, read_context
from console.settings import Settings
from console.storage import Store
from tests.loop.conftest import record_revision

NOW = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return format_time(NOW - timedelta(minutes=minutes))


def ev(version: str, kind: str, minutes: float, window: tuple[float, float] | None = None) -> dict:
    span = (at(window[0]), at(window[1])) if window else (None, None)
    return revisions.event("shop-api", version, kind, at(minutes), kind, source="loop", window=span)


def test_bad_and_known_good_versions_come_from_the_revision_history():
    history = revisions.revisions(
        [
            ev("v1.0.0", revisions.VERIFIED_HEALTHY, 30, window=(31, 30)),
            ev("v1.0.1", revisions.VERIFIED_HEALTHY, 20, window=(21, 20)),
            ev("v1.1.0", revisions.VERIFIED_HEALTHY, 11, window=(12, 11)),
            ev("v1.1.0", revisions.CRASH_LOOPING, 10),  # healthy at first, not since
            ev("v1.2.0-leak", revisions.ROLLED_BACK, 2),
            ev("v1.3.0", revisions.SEEN, 1),  # only announced: unknown
        ]
    )
    context = context_from_history(history, [], version="v1.3.0", deployed_at=NOW.timestamp())
    assert set(context.history.bad_versions) == {"v1.2.0-leak", "v1.1.0"}
    assert context.history.known_good_version == "v1.0.1"
    assert context.known_good is not None and (context.known_good.start, context.known_good.end) == (
        at(21),
        at(20),
    )
    assert context.history.open_incident is None


def test_a_version_judged_bad_is_never_the_known_good_one_and_the_deployed_one_is_not_bad_to_itself():
    history = revisions.revisions(
        [ev("v1", revisions.VERIFIED_HEALTHY, 30, window=(31, 30)), ev("v1", revisions.JUDGED_FAULTY, 5)]
    )
    context = context_from_history(history, [], version="v2", deployed_at=NOW.timestamp())
    assert context.history.bad_versions == ("v1",) and context.history.known_good_version is None
    assert context.known_good is None
    again = context_from_history(history, [], version="v1", deployed_at=NOW.timestamp())
    assert again.history.bad_versions == ()


def test_a_redeploy_of_a_known_good_version_is_compared_with_its_own_measured_window():
    history = revisions.revisions([ev("v1", revisions.VERIFIED_HEALTHY, 30, window=(31, 30))])
    context = context_from_history(history, [], version="v1", deployed_at=NOW.timestamp())
    assert context.history.known_good_version is None  # no other version to roll back to
    assert context.known_good is not None and context.known_good.version == "v1"
    later = context_from_history(
        history, [], version="v2", deployed_at=(NOW - timedelta(minutes=40)).timestamp()
    )
    assert later.known_good is None  # measured after that deploy: not its reference


def test_an_incident_open_before_the_deploy_counts_one_opened_after_it_does_not():
    before = {"id": "inc-1", "summary": "upstream payments failing", "opened_at": at(3)}
    after = {"id": "inc-2", "summary": "memory", "opened_at": format_time(NOW + timedelta(minutes=1))}
    assert (
        context_from_history([], [after], version="v2", deployed_at=NOW.timestamp()).history.open_incident
        is None
    )
    context = context_from_history([], [after, before], version="v2", deployed_at=NOW.timestamp())
    assert context.history.open_incident == "upstream payments failing"


def test_the_context_is_read_from_the_store(tmp_path):
    settings = Settings(data_dir=tmp_path)
    store = Store(settings.db_path)
    try:
        record_revision(store, "shop-api", "v1", revisions.VERIFIED_HEALTHY, at(9), window=(at(10), at(9)))
        record_revision(store, "shop-api", "v2", revisions.JUDGED_FAULTY, at(5))
        record_revision(store, "other", "v0", revisions.VERIFIED_HEALTHY, at(8), window=(at(9), at(8)))
    finally:
        store.close()
    context = read_context("shop-api", "v3", NOW.timestamp(), settings)
    assert context.history.bad_versions == ("v2",) and context.history.known_good_version == "v1"
    assert context.known_good is not None and context.known_good.start == at(10)


def test_a_console_without_its_records_judges_without_them_and_says_so(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the data directory should be")
    context = read_context("shop-api", "v3", NOW.timestamp(), Settings(data_dir=blocked))
    assert context.history.known_good_version is None
    assert context.notes and context.notes[0].startswith("baseline: the console's records cannot be read")
