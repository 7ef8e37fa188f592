"""The store's shape: a plain container of small repositories on one Database (one concept, one
module, one name; no inheritance), and writes that span repositories commit in one transaction of
the caller's, or not at all."""

from __future__ import annotations

import pytest

from console.storage import Database, Store


class Refused(Exception):
    """What makes the caller's transaction roll back in these tests."""


def test_the_store_is_a_container_of_repositories_on_one_database(store):
    assert Store.__bases__ == (object,)
    assert [name for name in vars(Store) if not name.startswith("_")] == ["close"]  # no method of its own
    assert isinstance(store.db, Database)
    repositories = {name: part for name, part in vars(store).items() if name != "db"}
    assert len(repositories) >= 15
    for name, part in repositories.items():
        kind = type(part)
        assert kind.__bases__ == (object,), f"store.{name} inherits"
        assert kind.__module__ == f"console.storage.{name}", f"store.{name} lives in {kind.__module__}"
        assert part.db is store.db, f"store.{name} has a database of its own"


def test_a_delivery_its_incident_and_an_audit_row_commit_together_or_not_at_all(store):
    def write(key: str, *, refuse: bool) -> None:
        with store.db.write() as conn:
            assert store.deliveries.begin_in(conn, "alert", key).claimed
            incident, opened = store.incidents.open_or_attach_in(
                conn,
                service="checkout",
                alert_key="HighErrorRate",
                fingerprint=key,
                starts_at="2026-01-01T00:00:00Z",
                severity="CRITICAL",
            )
            assert opened
            store.deliveries.finish_in(conn, "alert", key, status="launched")
            store.audit.record_in(conn, "alertmanager", "test.incident_opened", incident["id"], {})
            if refuse:
                raise Refused

    with pytest.raises(Refused):
        write("first", refuse=True)
    assert store.deliveries.get("alert", "first") is None
    assert store.incidents.list() == [] and store.audit.trail() == []

    write("second", refuse=False)
    assert store.deliveries.get("alert", "second")["status"] == "launched"
    [incident] = store.incidents.list()
    assert [row["subject"] for row in store.audit.trail()] == [incident["id"]]


def test_an_approval_request_and_its_audit_row_are_one_write(store):
    plan = {"approval": [{"name": "rollback", "risk": "HIGH"}]}
    with pytest.raises(Refused), store.db.write() as conn:
        store.approvals.request_in(
            conn,
            execution_id="ex-1",
            plan=plan,
            decision={"verdict": "ROLLBACK"},
            requested_by="ci-pipeline",
            service="checkout",
            deployment_id=None,
            timeout_minutes=30,
        )
        raise Refused
    assert store.approvals.list() == [] and store.audit.trail() == []

    with store.db.write() as conn:
        approval_id, _ = store.approvals.request_in(
            conn,
            execution_id="ex-1",
            plan=plan,
            decision={"verdict": "ROLLBACK"},
            requested_by="ci-pipeline",
            service="checkout",
            deployment_id=None,
            timeout_minutes=30,
        )
    assert store.approvals.get(approval_id)["status"] == "pending"
    trail = [(row["event"], row["subject"]) for row in store.audit.trail()]
    assert trail == [("approval.requested", approval_id)]
