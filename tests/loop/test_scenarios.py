"""The mock-data scenarios: loader behaviour, expected verdicts, reproducible generation."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from console.analysis import analyze_document
from console.domain.models import Verdict
from console.loop.scenarios import (
    ScenarioError,
    list_scenarios,
    load_scenario_document,
    scan_scenarios,
)
from tests.conftest import PROJECT_ROOT

MOCK = PROJECT_ROOT / "mock-data"
REQUIRED = {
    "memory-leak": Verdict.ROLLBACK,
    "healthy-hotfix": Verdict.CONTINUE,
    "db-timeouts": Verdict.ROLLBACK,
    "crash-loop": Verdict.ROLLBACK,
    "latency-regression": Verdict.ROLLBACK,
    "transient-blip": Verdict.CONTINUE,
    "dependency-outage": Verdict.ESCALATE,
}


def test_required_scenarios_exist_with_their_verdicts():
    scenarios = {s.id: s for s in list_scenarios(MOCK)}
    for sid, verdict in REQUIRED.items():
        assert scenarios[sid].expected_verdict is verdict
    assert scenarios["traffic-spike-before-deploy"].expected_verdict is not Verdict.ROLLBACK
    assert scenarios["low-traffic-noise"].expected_verdict is not Verdict.ROLLBACK
    assert [s.id for s in list_scenarios(MOCK)] == sorted(scenarios)
    assert all(s.title and s.description for s in scenarios.values())


@pytest.mark.parametrize("scenario", list_scenarios(MOCK), ids=lambda s: s.id)
def test_every_scenario_gets_its_expected_verdict(scenario):
    decision = analyze_document(load_scenario_document(scenario.id, MOCK))
    assert decision.verdict is scenario.expected_verdict, decision.reasoning


def test_scenario_files_are_small_and_realistic():
    for path in MOCK.glob("*.json"):
        assert path.stat().st_size < 300_000, path.name
        doc = json.loads(path.read_text())
        levels = {rec["level"] for rec in doc["logs"]}
        assert "INFO" in levels, path.name
        points = len(doc["metrics"]["error_rate"])
        assert 80 <= points <= 130, path.name  # ~1 h baseline + 30-60 min after, 1-minute steps


def test_the_committed_files_are_what_the_generator_writes(gen, tmp_path):
    written = gen.write_all(tmp_path)
    assert {p.name for p in written} == {p.name for p in MOCK.glob("*.json")}
    for path in written:
        assert path.read_bytes() == (MOCK / path.name).read_bytes(), f"regenerate: {path.name} differs"


def test_load_scenario_document_keeps_scenario_and_validates():
    doc = load_scenario_document("memory-leak", MOCK)
    assert doc["scenario"]["id"] == "memory-leak"
    assert doc["deployment"]["service"] == "payment-service"


@pytest.mark.parametrize("bad_id", ["nope", "../etc/passwd", "", "Memory-Leak"])
def test_unknown_scenario_is_a_clear_error(bad_id):
    with pytest.raises(ScenarioError, match="unknown scenario"):
        load_scenario_document(bad_id, MOCK)


@pytest.fixture
def messy_dir(tmp_path: Path) -> Path:
    shutil.copy(MOCK / "healthy-hotfix.json", tmp_path / "healthy-hotfix.json")
    good = json.loads((MOCK / "memory-leak.json").read_text())
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[]")
    no_meta = {k: v for k, v in good.items() if k != "scenario"}
    (tmp_path / "no-meta.json").write_text(json.dumps(no_meta))
    bad_verdict = dict(good, scenario=dict(good["scenario"], id="bad-verdict", expected_verdict="MAYBE"))
    (tmp_path / "bad-verdict.json").write_text(json.dumps(bad_verdict))
    bad_schema = dict(good, scenario=dict(good["scenario"], id="bad-schema"))
    bad_schema["deployment"] = {k: v for k, v in good["deployment"].items() if k != "service"}
    (tmp_path / "bad-schema.json").write_text(json.dumps(bad_schema))
    dup = json.loads((MOCK / "healthy-hotfix.json").read_text())
    (tmp_path / "z-duplicate.json").write_text(json.dumps(dup))
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def test_bad_files_are_reported_not_fatal(messy_dir):
    scenarios, problems = scan_scenarios(messy_dir)
    assert [s.id for s in scenarios] == ["healthy-hotfix"]
    messages = {p.path.name: p.message for p in problems}
    assert set(messages) == {
        "broken.json", "list.json", "no-meta.json", "bad-verdict.json", "bad-schema.json", "z-duplicate.json",
    }  # fmt: skip
    assert "not valid JSON" in messages["broken.json"]
    assert "scenario" in messages["no-meta.json"]
    assert "expected_verdict" in messages["bad-verdict.json"] and "MAYBE" in messages["bad-verdict.json"]
    assert "deployment" in messages["bad-schema.json"] and "service" in messages["bad-schema.json"]
    assert "already used" in messages["z-duplicate.json"]
    assert all("\n" not in m for m in messages.values())


def test_list_scenarios_logs_a_warning_per_skipped_file(messy_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="console.loop.scenarios"):
        scenarios = list_scenarios(messy_dir)
    assert [s.id for s in scenarios] == ["healthy-hotfix"]
    assert sum("scenario skipped" in r.getMessage() for r in caplog.records) == 6


def test_loading_an_unusable_scenario_raises_scenario_error(messy_dir):
    with pytest.raises(ScenarioError, match=r"bad-schema\.json"):
        load_scenario_document("bad-schema", messy_dir)


def test_a_file_is_checked_once_per_content(tmp_path, monkeypatch):
    """The schema check runs once per file content: reading it again skips it, a file rewritten
    with a broken snapshot is checked (and refused) again."""
    from console.loop import scenarios

    checked = []
    real = scenarios.validate_document
    monkeypatch.setattr(scenarios, "validate_document", lambda doc: checked.append(1) or real(doc))
    monkeypatch.setattr(scenarios, "_checked", set())
    doc = json.loads((MOCK / "healthy-hotfix.json").read_text())
    path = tmp_path / "healthy-hotfix.json"
    path.write_text(json.dumps(doc))
    for _ in range(3):
        assert load_scenario_document("healthy-hotfix", tmp_path) == doc
    assert len(checked) == 1
    doc["deployment"].pop("service")
    path.write_text(json.dumps(doc))
    with pytest.raises(ScenarioError, match="service"):
        load_scenario_document("healthy-hotfix", tmp_path)
    with pytest.raises(ScenarioError, match="service"):  # a refused content is never remembered
        load_scenario_document("healthy-hotfix", tmp_path)
    assert len(checked) == 3


def test_missing_directory_is_a_problem_not_a_crash(tmp_path):
    scenarios, problems = scan_scenarios(tmp_path / "absent")
    assert scenarios == [] and "not found" in problems[0].message
