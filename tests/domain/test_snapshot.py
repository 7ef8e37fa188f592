"""The snapshot loader (console/domain/snapshot.py): valid documents load, invalid ones fail with one line
naming the field."""

from __future__ import annotations

import json

import pytest

from console.domain.snapshot import SnapshotError, load_snapshot, loads_snapshot, parse_snapshot
from tests.conftest import DEPLOYED_AT, series, snapshot_doc


def good() -> dict:
    return snapshot_doc(
        {"error_rate": series([0.01, 0.02, 0.03]), "latency_p95_ms": series([100, 120, 110])},
        logs=[{"ts": "2026-11-20T14:01:00Z", "level": "error", "message": "boom", "source": "pod-1"}],
    )


def test_a_valid_document_loads_into_arrays_sorted_by_time():
    doc = good()
    doc["metrics"]["error_rate"].reverse()
    snap = parse_snapshot(doc)
    times, values = snap.metrics["error_rate"]
    assert times == sorted(times)
    assert values == [0.01, 0.02, 0.03]
    assert snap.deployment.deployed_at == DEPLOYED_AT
    assert snap.logs[0].level == "ERROR"  # levels are normalised


def test_round_trip_through_to_dict():
    snap = parse_snapshot(good())
    again = parse_snapshot(snap.to_dict())
    assert again.metrics == snap.metrics and again.logs == snap.logs and again.deployment == snap.deployment


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("deployment"), "deployment"),
        (lambda d: d["deployment"].pop("service"), "deployment"),
        (lambda d: d["deployment"].update(deployed_at="yesterday"), "deployed_at"),
        (lambda d: d["metrics"]["error_rate"][1].__setitem__(1, "abc"), r"metrics\.error_rate\[1\]\[1\]"),
        (
            lambda d: d["metrics"]["error_rate"][0].__setitem__(0, "not a time"),
            r"metrics\.error_rate\[0\]\[0\]",
        ),
        (lambda d: d["metrics"]["error_rate"].append([1]), r"metrics\.error_rate\[3\]"),
        (lambda d: d["metrics"].update(latency_p95_ms="fast"), r"metrics\.latency_p95_ms"),
        (lambda d: d["logs"][0].pop("message"), r"logs\[0\]"),
        (lambda d: d["logs"][0].update(ts=12), r"logs\[0\]\.ts"),
    ],
)
def test_invalid_documents_name_the_field(mutate, field):
    doc = good()
    mutate(doc)
    with pytest.raises(SnapshotError, match=field) as info:
        parse_snapshot(doc)
    assert "\n" not in str(info.value)


def test_non_finite_values_are_rejected():
    text = json.dumps(good()).replace("0.02", "NaN")
    with pytest.raises(SnapshotError, match=r"metrics\.error_rate\[1\]\[1\].*finite"):
        loads_snapshot(text)


def test_bad_json_and_missing_file_are_one_line_errors(tmp_path):
    with pytest.raises(SnapshotError, match="not valid JSON"):
        loads_snapshot("{nope")
    with pytest.raises(SnapshotError, match="cannot read file"):
        load_snapshot(tmp_path / "absent.json")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"deployment": {}}))
    with pytest.raises(SnapshotError, match=r"^bad\.json: "):
        load_snapshot(path)
