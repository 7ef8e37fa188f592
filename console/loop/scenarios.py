"""The demo scenarios in ``mock-data/``: snapshots with one more top-level key, ``scenario``.

A scenario file that cannot be used (bad JSON, missing or invalid ``scenario`` block, a snapshot
that breaks the schema) does not break the list: :func:`list_scenarios` skips it and logs a
one-line warning, and :func:`scan_scenarios` returns the problems next to the good scenarios for a
caller that wants to show them (e.g. the console's scenario picker).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.domain.models import Verdict
from console.domain.snapshot import SnapshotError, validate_document
from console.settings import Settings

log = logging.getLogger(__name__)

SCENARIO_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
DEMO_SCENARIO = "memory-leak"
"""The one-click demo the README names: the Scenarios page shows it first."""
_CHECKED_MAX = 1024
_checked: set[bytes] = set()
"""Digests of the scenario files whose snapshot passed the schema: a file is checked once per
content, not on each read (the Scenarios page lists every file, each launch reads its own)."""


class ScenarioError(ValueError):
    """A scenario is unknown or unusable; the message is one line for the operator."""


def _shown(value: Any, limit: int = 80) -> str:
    """A bounded repr of a value taken from a file or a request, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    description: str
    expected_verdict: Verdict
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "expected_verdict": self.expected_verdict.value,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class ScenarioProblem:
    path: Path
    message: str


def _mock_dir(mock_dir: Path | str | None) -> Path:
    return Path(mock_dir) if mock_dir is not None else Settings().mock_data_dir


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path.name}: cannot read file ({exc.strerror or exc})") from None


def _decode(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path.name}: not valid JSON ({type(exc).__name__})") from None
    except RecursionError:
        raise ScenarioError(f"{path.name}: not valid JSON (nested too deeply)") from None
    except ValueError:  # Python's limit on integer digits
        raise ScenarioError(f"{path.name}: not valid JSON (a number is too long)") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path.name}: the document is not a JSON object")
    return doc


def _scenario_of(path: Path, doc: dict[str, Any]) -> Scenario:
    meta = doc.get("scenario")
    if not isinstance(meta, dict):
        raise ScenarioError(f"{path.name}: scenario: missing or not an object")
    for key in ("id", "title", "expected_verdict"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise ScenarioError(f"{path.name}: scenario.{key}: missing or not a non-empty string")
    if not SCENARIO_ID.match(meta["id"]):
        raise ScenarioError(f"{path.name}: scenario.id: {_shown(meta['id'])} is not a lowercase id")
    try:
        verdict = Verdict(meta["expected_verdict"].strip().upper())
    except ValueError:
        raise ScenarioError(
            f"{path.name}: scenario.expected_verdict: {_shown(meta['expected_verdict'])} is not one of "
            + ", ".join(v.value for v in Verdict)
        ) from None
    description = meta.get("description")
    return Scenario(
        id=meta["id"],
        title=meta["title"].strip(),
        description=description.strip() if isinstance(description, str) else "",
        expected_verdict=verdict,
        path=path,
    )


def read_scenario(path: Path) -> tuple[Scenario, dict[str, Any]]:
    """Read and check one scenario file: the scenario and its full document (snapshot + scenario)."""
    raw = _read(path)
    doc = _decode(path, raw)
    scenario = _scenario_of(path, doc)
    digest = hashlib.blake2b(raw, digest_size=16).digest()
    if digest not in _checked:
        snapshot_doc = {k: v for k, v in doc.items() if k != "scenario"}
        try:
            validate_document(snapshot_doc)
        except SnapshotError as exc:
            raise ScenarioError(f"{path.name}: {exc}") from None
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked.add(digest)
    return scenario, doc


def scan_scenarios(mock_dir: Path | str | None = None) -> tuple[list[Scenario], list[ScenarioProblem]]:
    """All usable scenarios sorted by id, and the files that could not be used with why.

    A second file claiming an id already taken is a problem, not a silent override."""
    directory = _mock_dir(mock_dir)
    scenarios: dict[str, Scenario] = {}
    problems: list[ScenarioProblem] = []
    if not directory.is_dir():
        return [], [ScenarioProblem(directory, f"{directory}: scenario directory not found")]
    for path in sorted(directory.glob("*.json")):
        try:
            scenario, _ = read_scenario(path)
        except ScenarioError as exc:
            problems.append(ScenarioProblem(path, str(exc)))
            continue
        if scenario.id in scenarios:
            other = scenarios[scenario.id].path.name
            problems.append(
                ScenarioProblem(path, f"{path.name}: scenario.id {scenario.id!r} already used by {other}")
            )
            continue
        scenarios[scenario.id] = scenario
    return [scenarios[k] for k in sorted(scenarios)], problems


def list_scenarios(mock_dir: Path | str | None = None) -> list[Scenario]:
    """Usable scenarios sorted by id; unusable files are skipped with a logged one-line warning."""
    scenarios, problems = scan_scenarios(mock_dir)
    for problem in problems:
        log.warning("scenario skipped: %s", problem.message)
    return scenarios


def get_scenario(scenario_id: str, mock_dir: Path | str | None = None) -> Scenario:
    for scenario in scan_scenarios(mock_dir)[0]:
        if scenario.id == scenario_id:
            return scenario
    raise ScenarioError(f"unknown scenario {_shown(scenario_id)}")


def load_scenario_document(scenario_id: str, mock_dir: Path | str | None = None) -> dict[str, Any]:
    """The snapshot document of one scenario (the ``scenario`` key kept), validated.

    Raises ScenarioError for an unknown id or an unusable file."""
    if not isinstance(scenario_id, str) or not SCENARIO_ID.match(scenario_id):
        raise ScenarioError(f"unknown scenario {_shown(scenario_id)}")
    directory = _mock_dir(mock_dir)
    direct = directory / f"{scenario_id}.json"
    if direct.is_file():
        scenario, doc = read_scenario(direct)
        if scenario.id == scenario_id:
            return doc
    scenario = get_scenario(scenario_id, directory)
    return read_scenario(scenario.path)[1]


DEFAULT_DEPLOYER = "ci-pipeline"


def requester_of(doc: dict[str, Any]) -> str:
    """Who asks for a scenario's approvals: its deployer (the console user who launched the demo is
    not the requester, so that person may approve it)."""
    deployment = doc.get("deployment") if isinstance(doc.get("deployment"), dict) else {}
    return str(deployment.get("deployed_by") or DEFAULT_DEPLOYER)

