"""The snapshot's ``evidence`` section: it round-trips through JSON, and a malformed one is a
SnapshotError naming the field (it crosses processes: Kestra tasks, the store)."""

from __future__ import annotations

import copy
import json

import pytest

from console.domain.snapshot import SnapshotError, parse_snapshot
from tests.count_windows import MB, count_window


def test_evidence_round_trips_through_json_and_the_snapshot():
    window = count_window(memory=lambda t: 40 * MB, seed=1)
    doc = json.loads(json.dumps(window.doc))
    snapshot = parse_snapshot(doc)
    assert snapshot.evidence == window.evidence
    assert snapshot.to_dict()["evidence"] == window.evidence.to_dict()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e["requests"][0]["points"][2].__setitem__(1, "x"),
         "evidence.requests[0].points[2][1]: must be a number, got str"),
        (lambda e: e["latency"]["series"][1]["points"][0][1].pop(),
         "evidence.latency.series[1].points[0]: 14 bucket counts for 15 buckets"),
        (lambda e: e["latency"].__setitem__("bounds", [0.1, 0.05]), "evidence.latency.bounds: must increase"),
        (lambda e: e["history"].__setitem__("bad_versions", "v1"),
         "evidence.history.bad_versions: must be a list"),
    ],
)  # fmt: skip
def test_a_malformed_evidence_section_names_the_field(edit, message):
    doc = copy.deepcopy(count_window(seed=2).doc)
    edit(doc["evidence"])
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert str(caught.value).startswith(message)


def test_a_snapshot_without_evidence_is_what_it_always_was():
    doc = copy.deepcopy(count_window(seed=3).doc)
    del doc["evidence"]
    snapshot = parse_snapshot(doc)
    assert snapshot.evidence is None and "evidence" not in snapshot.to_dict()
