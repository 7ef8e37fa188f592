"""Every failure falls back to the rules decision, within its budget, without leaking the key.

No test here times the call (timings belong in benchmarks/bench_llm.py): each shows by the note
which way the call ended. A call that outlived its budget is cut by the watchdog and says "timeout";
a note that names the failure instead (refused, rate limited, a retry that would cross the budget)
proves the call gave up before the budget ran out. A lower bound (the budget was used, not cut
short) cannot fail on a slow machine and is kept."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace

import pytest

from console.loop.narrative import LLMFailure, _run_with_watchdog, summarize
from tests.llm.conftest import API_KEY
from tests.llm.fake_llm import DEFAULT_ANSWER, closed_port, content, slow, status, valid
from tests.waiting import patience


def assert_fallback(out, rules, fragment: str) -> str:
    """The rules decision unchanged, plus exactly one note containing ``fragment``."""
    assert out.analyzer == "rules"
    assert out.verdict == rules.verdict and out.summary == rules.summary
    assert out.actions == rules.actions and out.confidence == rules.confidence
    assert out.llm_verdict is None
    assert out.notes[:-1] == rules.notes
    note = out.notes[-1]
    assert fragment in note, note
    assert note.endswith(": rules summary used")
    assert API_KEY not in note
    return note


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_timeout_falls_back_within_the_budget(llm_settings, fake, snapshot, rollback_decision):
    settings = replace(llm_settings, llm_timeout_s=0.6)
    fake.then(slow(30.0))  # a valid answer, had the call waited for it
    out, elapsed = timed(lambda: summarize(snapshot, rollback_decision, settings))
    note = assert_fallback(out, rollback_decision, "timeout after 0.6 s")
    assert note == "LLM unavailable (timeout after 0.6 s): rules summary used"
    assert elapsed >= 0.5  # the budget was used, not cut short
    assert len(fake.requests) == 1  # a timed-out attempt used the whole budget: no retry


def test_connection_refused(llm_settings, snapshot, rollback_decision):
    settings = replace(llm_settings, llm_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    out = summarize(snapshot, rollback_decision, settings)
    assert_fallback(out, rollback_decision, "connection failed")  # not "timeout": before the budget ran out


def test_wrong_key_is_401_and_not_retried(llm_settings, fake, snapshot, rollback_decision):
    settings = replace(llm_settings, together_api_key=type(llm_settings.together_api_key)("sk-wrong-key-777"))
    out = summarize(snapshot, rollback_decision, settings)
    note = assert_fallback(out, rollback_decision, "authentication failed (401)")
    assert "sk-wrong-key-777" not in note
    assert len(fake.requests) == 1


def test_429_with_short_retry_after_is_retried_then_succeeds(llm_settings, fake, snapshot, rollback_decision):
    fake.then(status(429, retry_after=0.2), valid())
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert out.analyzer.startswith("llm:")
    assert len(fake.requests) == 2
    gap = fake.requests[1].at - fake.requests[0].at
    assert gap >= 0.18  # Retry-After was honoured


def test_429_storm_falls_back_after_the_allowed_retries(llm_settings, fake, snapshot, rollback_decision):
    fake.reset(default=status(429, retry_after=0.1))
    settings = replace(llm_settings, llm_max_retries=2)
    out = summarize(snapshot, rollback_decision, settings)
    assert_fallback(out, rollback_decision, "rate limited (429)")  # not "timeout": within the budget
    assert len(fake.requests) == 3


def test_retry_after_longer_than_budget_gives_up_at_once(llm_settings, fake, snapshot, rollback_decision):
    fake.reset(default=status(429, retry_after=30))
    out = summarize(snapshot, rollback_decision, llm_settings)
    # said before any wait: a 30 s wait would have been cut by the watchdog as a "timeout"
    assert_fallback(out, rollback_decision, "rate limited (429), retry after 30 s exceeds the budget")
    assert len(fake.requests) == 1


@pytest.mark.parametrize("code", [500, 503])
def test_server_error_once_is_retried(code, llm_settings, fake, snapshot, rollback_decision):
    fake.then(status(code), valid())
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert out.analyzer.startswith("llm:")
    assert len(fake.requests) == 2


@pytest.mark.parametrize("code", [500, 503])
def test_persistent_server_error_falls_back(code, llm_settings, fake, snapshot, rollback_decision):
    fake.reset(default=status(code))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert_fallback(out, rollback_decision, f"server error ({code})")
    assert len(fake.requests) == 1 + llm_settings.llm_max_retries


def test_max_retries_zero_means_one_attempt(llm_settings, fake, snapshot, rollback_decision):
    fake.reset(default=status(503))
    summarize(snapshot, rollback_decision, replace(llm_settings, llm_max_retries=0))
    assert len(fake.requests) == 1


def test_unknown_model_404(llm_settings, fake, snapshot, rollback_decision):
    fake.then(status(404))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert_fallback(out, rollback_decision, "not found (404)")


def test_invalid_json_content(llm_settings, fake, snapshot, rollback_decision):
    fake.then(content('{"verdict": "ROLLBACK", "summary": '))
    out = summarize(snapshot, rollback_decision, llm_settings)
    note = assert_fallback(out, rollback_decision, "invalid JSON")
    assert note.startswith("LLM answer rejected")


def test_empty_content(llm_settings, fake, snapshot, rollback_decision):
    fake.then(content(""))
    assert_fallback(summarize(snapshot, rollback_decision, llm_settings), rollback_decision, "empty answer")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"verdict": "APPROVE_ALL"}, "verdict"),
        ({"summary": 42}, "summary"),
        ({"actions": "rollback"}, "actions"),
        ({"actions": [{"name": "restart_pod", "reason": "x", "risk": "LOW"}]}, "actions[0]"),
        ({"extra": True}, "answer"),
    ],
)
def test_schema_mismatch(change, where, llm_settings, fake, snapshot, rollback_decision):
    doc = {**DEFAULT_ANSWER, **change}
    fake.then(content(json.dumps(doc)))
    out = summarize(snapshot, rollback_decision, llm_settings)
    note = assert_fallback(out, rollback_decision, f"schema mismatch: {where}")
    assert note.startswith("LLM answer rejected")


def test_missing_field_is_schema_mismatch(llm_settings, fake, snapshot, rollback_decision):
    doc = {k: v for k, v in DEFAULT_ANSWER.items() if k != "reasoning"}
    fake.then(content(json.dumps(doc)))
    assert_fallback(
        summarize(snapshot, rollback_decision, llm_settings), rollback_decision, "schema mismatch"
    )


def test_bad_base_url_is_a_clear_note(llm_settings, snapshot, rollback_decision):
    out = summarize(snapshot, rollback_decision, replace(llm_settings, llm_base_url="localhost:11434"))
    assert_fallback(out, rollback_decision, "LLM_BASE_URL must be an http:// or https:// URL")


def test_watchdog_bounds_a_call_the_http_timeouts_miss():
    released = threading.Event()

    def hangs() -> str:
        released.wait(patience(30))
        return "late"  # what the caller would get, had the watchdog waited for the call

    try:
        with pytest.raises(LLMFailure) as info:
            _run_with_watchdog(hangs, 0.2)
    finally:
        released.set()
    assert info.value.reason == "timeout after 0.2 s"


def test_watchdog_passes_results_and_errors_through():
    assert _run_with_watchdog(lambda: "ok", 1.0) == "ok"
    with pytest.raises(LLMFailure, match="boom"):
        _run_with_watchdog(lambda: (_ for _ in ()).throw(LLMFailure("boom")), 1.0)


def test_key_never_logged_even_at_debug(llm_settings, fake, snapshot, rollback_decision, caplog):
    caplog.set_level(logging.DEBUG)
    fake.then(status(401), status(429, retry_after=0.05), status(503), content("nope"), slow(30.0))
    fast = replace(llm_settings, llm_timeout_s=0.3, llm_max_retries=0)
    notes = []
    for _ in range(5):
        notes.extend(summarize(snapshot, rollback_decision, fast).notes)
    refused = replace(fast, llm_base_url=f"http://127.0.0.1:{closed_port()}")
    notes.extend(summarize(snapshot, rollback_decision, refused).notes)
    assert len(notes) == 12
    text = caplog.text + "\n".join(notes) + "".join(r.getMessage() for r in caplog.records)
    assert "summarize:" in caplog.text  # our own log lines were captured
    assert API_KEY not in text


def test_connection_refused_is_retried_once_the_server_comes_up(llm_settings, snapshot, rollback_decision):
    import threading

    from tests.llm.fake_llm import FakeLLM

    port = closed_port()
    servers: list[FakeLLM] = []

    def start_late() -> None:
        server = FakeLLM(api_key=API_KEY, port=port)
        server.__enter__()
        servers.append(server)

    timer = threading.Timer(0.1, start_late)  # up before the 0.25 s backoff ends
    timer.start()
    try:
        settings = replace(llm_settings, llm_base_url=f"http://127.0.0.1:{port}", llm_max_retries=1)
        out = summarize(snapshot, rollback_decision, settings)
    finally:
        timer.join()
        for server in servers:
            server.close()
    assert out.analyzer.startswith("llm:"), out.notes
    assert len(servers[0].requests) == 1


def test_answer_cut_off_at_max_tokens(llm_settings, fake, snapshot, rollback_decision):
    fake.then(content(json.dumps(DEFAULT_ANSWER)[:60], finish_reason="length"))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert_fallback(out, rollback_decision, "answer cut off at max_tokens")


def test_retries_stop_before_the_budget_runs_out(llm_settings, fake, snapshot, rollback_decision):
    fake.reset(default=status(503, retry_after=0.4))
    settings = replace(llm_settings, llm_timeout_s=0.8, llm_max_retries=3)
    out = summarize(snapshot, rollback_decision, settings)
    assert_fallback(out, rollback_decision, "server error (503), retry after 0.4 s exceeds the budget")
    assert len(fake.requests) == 2  # a second wait would have crossed the 0.8 s budget


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html>Sign in to the proxy</html>", "text/html"),
        ('{"choices": "x"}', "application/json"),
        ("[1, 2]", "application/json"),
    ],
)
def test_not_a_chat_completion(body, content_type, llm_settings, fake, snapshot, rollback_decision):
    from tests.llm.fake_llm import raw

    fake.then(raw(body, content_type))
    out = summarize(snapshot, rollback_decision, llm_settings)
    assert_fallback(out, rollback_decision, "not a chat completion")


def test_trickling_server_is_cut_off_by_the_total_deadline(llm_settings, fake, snapshot, rollback_decision):
    from tests.llm.fake_llm import trickle

    settings = replace(llm_settings, llm_timeout_s=0.5)
    fake.then(trickle(0.1))  # each byte arrives well within the read timeout
    out, elapsed = timed(lambda: summarize(snapshot, rollback_decision, settings))
    assert_fallback(out, rollback_decision, "timeout after 0.5 s")  # the whole answer was never read
    assert elapsed >= 0.5


def test_huge_number_is_invalid_json_not_a_crash(llm_settings, fake, snapshot, rollback_decision):
    fake.then(content("1" * 5000))  # json.loads raises ValueError (int digit limit), not JSONDecodeError
    assert_fallback(summarize(snapshot, rollback_decision, llm_settings), rollback_decision, "invalid JSON")
