"""The fake's answers validate against Kestra's own OpenAPI schemas (../shared/kestra), so tests
against the fake exercise the shapes a real server sends."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator

from console.engines.kestra.client import KestraClient
from tests.kestra.conftest import PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra

pytestmark = pytest.mark.kestra

SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "kestra"


@functools.lru_cache(maxsize=2)
def _spec(name: str) -> dict[str, Any]:
    path = SPEC_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the OpenAPI specs live in ../shared/kestra)")
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema.

    ``nullable`` becomes a null alternative, ``$ref`` points into ``$defs``, Java's
    ``Map<String, Object>`` values may be anything, and Java's ``\\p{..}`` classes (unsupported by
    Python's re) become ASCII ones.
    """
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in {"nullable", "example", "examples"}}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if out.get("additionalProperties") == {"type": "object"}:  # Java's Map<String, Object>: any value
        out["additionalProperties"] = True
    if isinstance(out.get("pattern"), str):
        out["pattern"] = out["pattern"].replace(r"\p{Ll}", "a-z").replace(r"\p{L}", "a-zA-Z")
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _validator(spec_name: str, schema_name: str) -> Draft202012Validator:
    schemas = _spec(spec_name)["components"]["schemas"]
    defs = {name: _to_json_schema(s) for name, s in schemas.items()}
    return Draft202012Validator({"$ref": f"#/$defs/{schema_name}", "$defs": defs})


def _errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)][:5]


def _get(fake: FakeKestra, path: str) -> Any:
    response = requests.get(f"{fake.url}/api/v1/main{path}", auth=(USER, PASSWORD), timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def paused_and_done(loaded: FakeKestra, client: KestraClient) -> tuple[str, str]:
    paused = client.trigger("devops.loop", "devops-loop", {"scenario": "memory-leak"}, labels={"team": "sre"})
    done = client.trigger("devops.loop", "devops-loop", {"scenario": "healthy-hotfix"})
    loaded.wait_state(paused.id, {"PAUSED"})
    loaded.wait_state(done.id, {"SUCCESS"})
    return paused.id, done.id


def test_execution_matches_schema(loaded: FakeKestra, paused_and_done: tuple[str, str]) -> None:
    validator = _validator("openapi-1.3.0.yml", "Execution")
    for execution_id in paused_and_done:
        doc = _get(loaded, f"/executions/{execution_id}")
        assert _errors(validator, doc) == []
        assert doc["taskRunList"] and doc["state"]["histories"]


def test_search_page_matches_schema(loaded: FakeKestra, paused_and_done: tuple[str, str]) -> None:
    validator = _validator("openapi-1.3.0.yml", "PagedResults_Execution_")
    doc = _get(loaded, "/executions/search?page=1&size=10&filters[namespace][EQUALS]=devops.loop")
    assert doc["total"] >= 2
    assert _errors(validator, doc) == []


def test_logs_match_schema(loaded: FakeKestra, paused_and_done: tuple[str, str]) -> None:
    validator = _validator("openapi-1.3.0.yml", "LogEntry")
    logs = _get(loaded, f"/logs/{paused_and_done[0]}")
    assert logs
    for entry in logs:
        assert _errors(validator, entry) == []


def test_validate_answer_matches_schema(loaded: FakeKestra) -> None:
    validator = _validator("openapi-1.3.0.yml", "ValidateConstraintViolation")
    response = requests.post(
        f"{loaded.url}/api/v1/main/flows/validate",
        data=b"id: x\nnamespace: devops.loop\ntasks: []\n",
        headers={"Content-Type": "application/x-yaml"},
        auth=(USER, PASSWORD),
        timeout=5,
    )
    [result] = response.json()
    assert result["constraints"]
    assert _errors(validator, result) == []


def test_2x_light_search_items_match_schema(loaded2: FakeKestra, client2: KestraClient) -> None:
    """2.x search items are ApiLightExecution (no taskRunList); their State carries readOnly getters
    the spec marks required, which we drop from the check (a generator artefact)."""
    execution = client2.trigger("devops.loop", "devops-loop", {"scenario": "memory-leak"})
    loaded2.wait_state(execution.id, {"PAUSED"})
    spec = _spec("openapi-2.0.0-SNAPSHOT.yml")
    state = spec["components"]["schemas"]["State"]
    if any(r.startswith("get") for r in state.get("required", [])):
        state = {**state, "required": [r for r in state["required"] if not r.startswith("get")]}
        spec["components"]["schemas"]["State"] = state
    validator = _validator("openapi-2.0.0-SNAPSHOT.yml", "PagedResults_ApiLightExecution_")
    doc = _get(loaded2, "/executions/search?page=1&size=10")
    assert doc["results"] and all("taskRunList" not in r for r in doc["results"])
    assert _errors(validator, doc) == []


def test_schema_check_catches_a_wrong_shape() -> None:
    """The validator is not vacuous: a Kestra-incompatible execution fails."""
    validator = _validator("openapi-1.3.0.yml", "Execution")
    bad = {"id": "x", "namespace": "n", "flowId": "f", "flowRevision": 1, "deleted": False,
           "state": {"current": "DANCING"}, "labels": {"team": "sre"}}  # fmt: skip
    problems = _errors(validator, bad)
    assert any("DANCING" in p for p in problems) and any(p.startswith("labels") for p in problems)
    assert any(
        "'deleted' is a required" in p
        for p in _errors(validator, {"id": "x", "state": {"current": "PAUSED"}})
    )
