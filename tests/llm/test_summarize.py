"""Success paths of summarize() against the fake server, through the real together client over HTTP."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from console.domain.models import Decision, Risk, Verdict
from console.loop.narrative import RESPONSE_SCHEMA, normalize_base_url, summarize
from console.settings import Secret
from tests.llm.conftest import API_KEY
from tests.llm.fake_llm import DEFAULT_ANSWER, FakeLLM, valid


def answer(**overrides):
    doc = json.loads(json.dumps(DEFAULT_ANSWER))
    doc.update(overrides)
    return doc


def test_no_api_key_returns_rules_decision_untouched_without_network(
    settings, fake, snapshot, rollback_decision
):
    no_key = replace(settings, llm_base_url=fake.url)
    out = summarize(snapshot, rollback_decision, no_key)
    assert out is rollback_decision
    assert out.notes == ["rules: 1 guard fired"]
    assert fake.requests == []


def test_success_carries_llm_narrative_and_keeps_rules_evidence(
    llm_settings, fake, snapshot, rollback_decision
):
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert out.analyzer == f"llm:{llm_settings.llm_model}"
    assert out.summary == DEFAULT_ANSWER["summary"]
    assert out.root_cause == DEFAULT_ANSWER["root_cause"]
    assert out.impact == DEFAULT_ANSWER["impact"]
    assert out.reasoning == DEFAULT_ANSWER["reasoning"]
    assert out.verdict == Verdict.ROLLBACK
    assert (out.rules_verdict, out.llm_verdict, out.disagreement) == (
        Verdict.ROLLBACK,
        Verdict.ROLLBACK,
        False,
    )
    # evidence-derived fields stay the rules'
    assert out.confidence == rollback_decision.confidence
    assert out.severity == rollback_decision.severity
    assert out.guards == rollback_decision.guards
    assert out.metrics == rollback_decision.metrics
    assert [a.name for a in out.actions] == ["rollback_deployment", "collect_diagnostics"]
    # the input decision is not mutated
    assert rollback_decision.analyzer == "rules"
    assert rollback_decision.summary.startswith("error_rate tripped")
    # round trip through JSON (crosses the Kestra task boundary)
    again = Decision.from_dict(json.loads(json.dumps(out.to_dict())))
    assert again.analyzer == out.analyzer and again.llm_verdict == Verdict.ROLLBACK


def test_request_uses_model_auth_and_json_schema_response_format(
    llm_settings, fake, snapshot, rollback_decision
):
    settings = replace(llm_settings, llm_model="meta-llama/Llama-3.3-70B-Instruct-Turbo")
    summarize(snapshot, rollback_decision, settings)
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.body["model"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    fmt = req.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == RESPONSE_SCHEMA
    assert [m["role"] for m in req.messages] == ["system", "user"]
    # the schema is also spelled out in the prompt (Together's structured-output guidance)
    assert json.dumps(RESPONSE_SCHEMA) in req.message_text("system")
    # the deterministic analysis and the registry are in the context
    user = req.message_text("user")
    assert "error_rate>=0.20" in user and "failover_database" in user and "Mann-Whitney" in user


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_with_or_without_v1_reaches_the_same_endpoint(
    suffix, llm_settings, fake, snapshot, rollback_decision
):
    settings = replace(llm_settings, llm_base_url=fake.url + suffix)
    out = summarize(snapshot, rollback_decision, settings)
    assert out.analyzer.startswith("llm:")
    assert [r.path for r in fake.requests] == ["/v1/chat/completions"]


def test_normalize_base_url():
    assert normalize_base_url("") is None
    assert normalize_base_url(" http://localhost:11434/v1/ ") == "http://localhost:11434"
    assert normalize_base_url("https://api.together.xyz/v1") == "https://api.together.xyz"
    assert normalize_base_url("https://proxy.local/llm") == "https://proxy.local/llm"


def test_llm_stricter_verdict_wins_and_routes_to_a_human(llm_settings, fake, snapshot, continue_decision):
    fake.then(valid(answer(verdict="ROLLBACK", actions=[])))
    out = summarize(snapshot, continue_decision, llm_settings)
    assert out.verdict == Verdict.ROLLBACK
    assert (out.rules_verdict, out.llm_verdict) == (Verdict.CONTINUE, Verdict.ROLLBACK)
    assert out.disagreement
    rollback = [a for a in out.actions if a.name == "rollback_deployment"]
    assert rollback and rollback[0].risk == Risk.HIGH
    assert any("stricter than the rules'" in n for n in out.notes)


def test_llm_less_strict_verdict_is_recorded_but_rules_verdict_kept(
    llm_settings, fake, snapshot, escalate_decision
):
    fake.then(valid(answer(verdict="CONTINUE", actions=[])))
    out = summarize(snapshot, escalate_decision, llm_settings)
    assert out.verdict == Verdict.ESCALATE
    assert out.llm_verdict == Verdict.CONTINUE and out.disagreement
    assert [a.name for a in out.actions] == ["scale_deployment"]
    assert out.actions[0].params == {"replicas": 2}
    assert any("less strict" in n for n in out.notes)


def test_unknown_action_is_dropped_and_noted(llm_settings, fake, snapshot, rollback_decision):
    acts = [
        {"name": "delete_database", "reason": "why not"},
        {"name": " Rollback_Deployment ", "reason": "r"},  # case and spaces are forgiven
        {"name": "Failover_Database", "reason": "r"},
    ]
    fake.then(valid(answer(actions=acts)))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert [a.name for a in out.actions] == [
        "rollback_deployment",
        "collect_diagnostics",
        "failover_database",
    ]
    assert "LLM recommended unknown action 'delete_database': dropped" in out.notes
    assert out.analyzer.startswith("llm:")


def test_llm_added_action_takes_registry_risk_and_low_risk_additions_are_refused(
    llm_settings, fake, snapshot, escalate_decision
):
    acts = [
        {"name": "failover_database", "reason": "primary looks sick"},
        {"name": "restart_pod", "reason": "cheap fix"},
    ]
    fake.then(valid(answer(verdict="ESCALATE", actions=acts)))
    out = summarize(snapshot, escalate_decision, llm_settings)
    by_name = {a.name: a for a in out.actions}
    assert by_name["failover_database"].risk == Risk.CRITICAL
    assert by_name["failover_database"].reason.startswith("Suggested by the LLM")
    assert "restart_pod" not in by_name  # would have run automatically: an LLM cannot grant that
    assert any("restart_pod" in n and "not added" in n for n in out.notes)


def test_narrative_is_sanitised_and_bounded(llm_settings, fake, snapshot, rollback_decision):
    fake.then(valid(answer(summary="ok\x1b[2J\u202e line\nnext " + "y" * 5000, reasoning="a\r\nb")))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert "\x1b" not in out.summary and "\u202e" not in out.summary
    assert out.summary.startswith("ok [2J line\nnext")
    assert len(out.summary) <= 1200
    assert out.reasoning == "a\nb"


def test_code_fenced_json_from_local_models_is_accepted(llm_settings, fake, snapshot, rollback_decision):
    from tests.llm.fake_llm import content

    fake.then(content("```json\n" + json.dumps(DEFAULT_ANSWER) + "\n```"))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert out.analyzer.startswith("llm:")


def test_injected_client_is_used(llm_settings, fake: FakeLLM, snapshot, rollback_decision):
    from together import Together

    client = Together(api_key=API_KEY, base_url=fake.url, max_retries=0)
    settings = replace(llm_settings, llm_base_url="http://127.0.0.1:9")  # would fail if used
    out = summarize(snapshot, rollback_decision, settings, client=client)
    assert out.analyzer.startswith("llm:") and len(fake.requests) == 1
    client.close()


def test_settings_never_show_the_key(llm_settings):
    assert API_KEY not in repr(llm_settings) and API_KEY not in str(llm_settings.safe_dict())
    assert isinstance(llm_settings.together_api_key, Secret)


def test_concurrent_calls_share_the_cached_client(llm_settings, fake, snapshot, rollback_decision):
    from concurrent.futures import ThreadPoolExecutor

    from console.loop.narrative import make_client

    with ThreadPoolExecutor(max_workers=8) as pool:
        outs = list(pool.map(lambda _: summarize(snapshot, rollback_decision, llm_settings), range(16)))
    assert all(o.analyzer.startswith("llm:") for o in outs), [o.notes for o in outs]
    assert len(fake.requests) == 16
    assert make_client(llm_settings) is make_client(llm_settings)
    other_key = replace(llm_settings, together_api_key=Secret("another-key"))
    assert make_client(other_key) is not make_client(llm_settings)
