"""The storage the inbound service of phase 2 needs: idempotent webhook deliveries (claimed once, duplicates
answered from the row, failed or abandoned ones claimed again) and incidents (one open per service
and alert, alerts attached, resolved when the last alert resolves), added by one migration that
upgrades an older file in place."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.settings import Settings
from console.storage import Store, migrations
from console.storage.deliveries import STALE_AFTER_S


@pytest.fixture
def store(settings: Settings):
    s = Store(settings.db_path)
    yield s
    s.close()


def test_a_delivery_is_claimed_once_and_duplicates_see_the_run(store):
    first = store.deliveries.begin("alert", "g|fp|t", detail={"alertname": "HighErrorRate"})
    assert first.claimed and not first.retry and first.row["status"] == "received"
    assert first.row["detail"] == {"alertname": "HighErrorRate"} and first.row["attempts"] == 1
    in_progress = store.deliveries.begin("alert", "g|fp|t")
    assert not in_progress.claimed and in_progress.row["status"] == "received"
    assert store.deliveries.finish(
        "alert", "g|fp|t", status="launched", execution_id="E1", detail={"incident": "i"}
    )
    duplicate = store.deliveries.begin("alert", "g|fp|t")
    assert not duplicate.claimed and duplicate.row["execution_id"] == "E1"
    assert duplicate.row["detail"] == {"alertname": "HighErrorRate", "incident": "i"}
    # the same key of another kind is another delivery
    assert store.deliveries.begin("alert-resolved", "g|fp|t").claimed
    assert [d["kind"] for d in store.deliveries.list()] == ["alert-resolved", "alert"]
    assert store.deliveries.get("alert", "nope") is None
    assert not store.deliveries.finish("alert", "nope", status="ignored")
    with pytest.raises(ValueError, match="not a finished delivery status"):
        store.deliveries.finish("alert", "g|fp|t", status="received")


def test_a_failed_or_abandoned_delivery_is_claimed_again(store):
    store.deliveries.begin("deployment", "k1")
    store.deliveries.finish("deployment", "k1", status="failed", detail={"error": "engine down"})
    again = store.deliveries.begin("deployment", "k1")
    assert again.claimed and again.retry and again.row["attempts"] == 2 and again.row["execution_id"] is None
    store.deliveries.begin("deployment", "k2")
    assert not store.deliveries.begin("deployment", "k2").claimed  # still in progress
    later = datetime.now(UTC) + timedelta(seconds=STALE_AFTER_S + 1)
    abandoned = store.deliveries.begin("deployment", "k2", now=later)
    assert abandoned.claimed and abandoned.retry


def test_of_concurrent_identical_deliveries_exactly_one_is_claimed(settings):
    stores = [Store(settings.db_path) for _ in range(4)]
    claims: list[bool] = []
    barrier = threading.Barrier(8)

    def deliver(s: Store) -> None:
        barrier.wait()
        claims.append(s.deliveries.begin("alert", "same").claimed)

    threads = [threading.Thread(target=deliver, args=(stores[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims) == [False] * 7 + [True]
    for s in stores:
        s.close()


def firing(store, fingerprint="aa01", *, alert_key="HighErrorRate", severity="HIGH", service="demo-service"):
    return store.incidents.open_or_attach(
        service=service,
        alert_key=alert_key,
        fingerprint=fingerprint,
        starts_at="2026-11-29T17:00:00Z",
        severity=severity,
        labels={"alertname": alert_key, "instance": fingerprint},
        annotations={"summary": "errors"},
        summary="demo-service fails requests",
    )


def test_alerts_of_an_open_incident_attach_to_it_and_the_last_resolution_resolves_it(store):
    incident, created = firing(store)
    assert created and incident["status"] == "open" and incident["severity"] == "HIGH"
    with store.db.write() as conn:
        store.incidents.set_execution_in(conn, incident["id"], "E1")
    second, created = firing(store, "bb02", severity="CRITICAL")
    assert not created and second["id"] == incident["id"] and second["severity"] == "CRITICAL"
    again, created = firing(store, "bb02", severity="LOW")  # a retry of the same alert
    assert not created and len(again["alerts"]) == 2 and again["severity"] == "CRITICAL"
    other, created = firing(store, alert_key="HighLatency")
    assert created and other["id"] != incident["id"]
    assert store.incidents.for_execution("E1")["id"] == incident["id"]
    assert store.incidents.find_open("demo-service", "HighErrorRate")["id"] == incident["id"]

    half = store.incidents.resolve_alert(
        service="demo-service",
        alert_key="HighErrorRate",
        fingerprint="aa01",
        starts_at="2026-11-29T17:00:00Z",
        ends_at="2026-11-29T17:09:00Z",
    )
    assert half["status"] == "open"
    assert [(a["fingerprint"], a["status"], a["ends_at"]) for a in half["alerts"]] == [
        ("aa01", "resolved", "2026-11-29T17:09:00Z"),
        ("bb02", "firing", None),
    ]
    done = store.incidents.resolve_alert(
        service="demo-service",
        alert_key="HighErrorRate",
        fingerprint="bb02",
        starts_at="2026-11-29T17:00:00Z",
    )
    assert done["status"] == "resolved" and done["resolved_at"] is not None
    assert store.incidents.find_open("demo-service", "HighErrorRate") is None
    # a resolution nobody opened (or a second one) finds nothing
    assert (
        store.incidents.resolve_alert(
            service="demo-service",
            alert_key="HighErrorRate",
            fingerprint="bb02",
            starts_at="2026-11-29T17:00:00Z",
        )
        is None
    )
    # the alert fires again: a new incident
    reopened, created = firing(store)
    assert created and reopened["id"] != incident["id"]
    assert [i["status"] for i in store.incidents.list(service="demo-service")].count("resolved") == 1
    assert len(store.incidents.list(status="open")) == 2
    assert store.incidents.get(incident["id"])["alerts"][0]["labels"] == {
        "alertname": "HighErrorRate",
        "instance": "aa01",
    }


def test_only_one_incident_is_ever_open_per_service_and_alert(store):
    firing(store)
    with pytest.raises(sqlite3.IntegrityError), store.db.write() as conn:
        conn.execute(
            "INSERT INTO incidents (id, service, alert_key, status, severity, opened_at, updated_at) "
            "VALUES ('inc-x', 'demo-service', 'HighErrorRate', 'open', 'LOW', 'now', 'now')"
        )


def test_the_migration_upgrades_an_older_file_in_place(settings):
    store = Store(settings.db_path)
    store.audit.record("alice", "test.kept", None, {"n": 1})
    store.close()
    inbound = next(m.version for m in migrations.MIGRATIONS if m.what.startswith("inbound deliveries"))
    before = inbound - 1
    raw = sqlite3.connect(settings.db_path)
    for table in ("inbound_deliveries", "incident_alerts", "incidents"):
        raw.execute(f"DROP TABLE {table}")
    raw.execute(f"PRAGMA user_version = {before}")
    raw.commit()
    raw.close()
    upgraded = Store(settings.db_path)
    try:
        assert upgraded.db.schema_version == len(migrations.MIGRATIONS)
        assert upgraded.audit.trail()[0]["event"] == "test.kept"
        assert upgraded.deliveries.begin("alert", "k").claimed
    finally:
        upgraded.close()


def test_the_migration_runs_again_harmlessly_on_a_file_that_has_the_tables(settings):
    Store(settings.db_path).close()
    raw = sqlite3.connect(settings.db_path)
    inbound = next(m.version for m in migrations.MIGRATIONS if m.what.startswith("inbound deliveries"))
    raw.execute(f"PRAGMA user_version = {inbound - 1}")
    raw.commit()
    raw.close()
    again = Store(Path(settings.db_path))
    assert again.db.schema_version == len(migrations.MIGRATIONS)
    again.close()
