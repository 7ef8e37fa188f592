"""Grouping accuracy metric and the LogHub 2k benchmark on the real labelled data."""

from __future__ import annotations

import pytest

from benchmarks.loghub import (
    SETTINGS,
    SYSTEMS,
    grouping_accuracy,
    grouping_accuracy_of,
    load_system,
    miner_params,
)
from console.analysis.logs import LogMiner, MinerParams


def test_perfect_grouping_scores_one_whatever_the_labels():
    truth = ["E1", "E1", "E2", "E3", "E3", "E3"]
    assert grouping_accuracy_of([7, 7, 9, 4, 4, 4], truth) == 1.0


def test_merged_groups_count_every_merged_line_wrong():
    truth = ["E1", "E1", "E2", "E3", "E3", "E3"]
    # E1 and E2 merged into one predicted group: those 3 lines are wrong, E3's 3 lines are right
    assert grouping_accuracy_of(["a", "a", "a", "b", "b", "b"], truth) == pytest.approx(3 / 6)


def test_split_groups_count_every_split_line_wrong():
    truth = ["E1", "E1", "E2", "E3", "E3", "E3"]
    # E3 split in two: all three E3 lines are wrong even though each part is pure
    assert grouping_accuracy_of(["a", "a", "b", "c", "c", "d"], truth) == pytest.approx(3 / 6)


def test_grouping_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        grouping_accuracy_of([1, 2], ["E1"])
    assert grouping_accuracy_of([], []) == 0.0


def test_benchmark_uses_the_production_miner_with_only_documented_per_system_changes():
    production = MinerParams()
    assert set(SETTINGS) == set(SYSTEMS) and len(SYSTEMS) == 16
    for system in SYSTEMS:
        params = miner_params(system)
        assert params.max_children == production.max_children
        assert params.parametrize_numeric_tokens == production.parametrize_numeric_tokens
        assert params.extra_delimiters == production.extra_delimiters
        assert (params.sim_th, params.depth) == (SETTINGS[system].sim_th, SETTINGS[system].depth)
        # each preprocessing regex becomes the Drain wildcard, as in logparser's preprocessing
        assert params.pre_masks == ()
        assert [(regex, name) for regex, name in params.masks] == [(r, "*") for r in SETTINGS[system].regexes]
    hdfs = LogMiner(miner_params("HDFS"))
    assert hdfs.mask("Receiving block blk_-1608 src: /10.250.19.102:54106") == "Receiving block <*> src: /<*>"


def test_load_system_reads_contents_and_event_ids(shared_data):
    contents, events = load_system(shared_data / "loghub", "HDFS")
    assert len(contents) == len(events) == 2000
    assert all(e.startswith("E") for e in events)
    assert "blk_" in contents[0]


def test_mean_grouping_accuracy_over_the_16_systems_reaches_the_target(shared_data):
    scores = grouping_accuracy(shared_data / "loghub")
    assert set(scores) == {*SYSTEMS, "mean"}
    assert all(0.0 <= scores[s] <= 1.0 for s in SYSTEMS)
    assert scores["mean"] == pytest.approx(sum(scores[s] for s in SYSTEMS) / 16)
    assert scores["mean"] >= 0.85, scores
    # well-structured systems must be nearly perfect; a broken miner would drop these first
    assert scores["HDFS"] >= 0.99 and scores["Apache"] >= 0.99 and scores["Windows"] >= 0.99
