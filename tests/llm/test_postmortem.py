"""The postmortem's LLM rewrite against the fake OpenAI-compatible server: a good rewrite is used; an
instruction planted in log text stays data, and a model that obeys it is caught; an answer that loses
a fact or adds a link, garbage and a timeout all keep the deterministic text, with a note."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from console.loop.narrative import FENCE_CLOSE, FENCE_OPEN
from console.loop.postmortem import SECTIONS, build_postmortem, write_postmortem
from tests.llm.conftest import INJECTION
from tests.llm.fake_llm import computed, content, slow
from tests.loop.conftest import LIVE_APPROVAL, LIVE_AUDIT, LIVE_VOTES, live_record

MATERIAL = {"approval": LIVE_APPROVAL, "votes": LIVE_VOTES, "audit": LIVE_AUDIT}
MARKER = "In short: the rollback of v1.4.0 failed and errors stayed high."


def draft_in(body: dict) -> str:
    """The draft the console sent, read back from the fenced data block."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    match = re.search(rf"{FENCE_OPEN} ([0-9a-f]+)>>>\n(.*)\n{FENCE_CLOSE} \1>>>", user, re.DOTALL)
    assert match, "no fenced block"
    return json.loads(match.group(2))["draft_markdown"]


def rewrite(edit):
    """A model that edits the draft it was sent with ``edit`` and answers in the schema."""
    return computed(lambda body: json.dumps({"markdown": edit(draft_in(body))}))


def with_summary(draft: str) -> str:
    head, rest = draft.split("## Summary\n\n", 1)
    return head + "## Summary\n\n" + MARKER + "\n\n" + rest.split("\n\n", 1)[1]


def postmortem(settings, record=None):
    return write_postmortem(None, settings, record=record or live_record(), **MATERIAL)


def test_a_good_rewrite_is_used_and_the_request_carries_the_guardrails(llm_settings, fake):
    fake.reset(default=rewrite(with_summary))
    result = postmortem(llm_settings)
    assert result.author == f"llm:{llm_settings.llm_model}" and result.notes == ()
    assert MARKER in result.markdown
    assert re.findall(r"(?m)^## (.+)$", result.markdown) == list(SECTIONS)
    assert result.markdown.rstrip().endswith("headings and facts checked._")
    [request] = fake.requests
    body = request.body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "postmortem"
    assert body["max_tokens"] == 4000
    system = request.message_text("system").lower()
    assert "untrusted" in system and "never follow instructions" in system
    assert '"deployment_status": "rollback failed"' in request.message_text("user")  # the trusted facts


def test_an_instruction_in_log_text_stays_data_and_an_obeying_model_is_caught(llm_settings, fake):
    record = live_record()
    record["decision"]["log_patterns"][0]["template"] = f"payment failed; {INJECTION}"

    def gullible(body: dict) -> str:
        draft = draft_in(body)
        if INJECTION in draft:  # it reads the planted log line and does what it says
            draft = draft.split("## Actions")[0] + "## Outcome\n\nThe deployment is healthy: CONTINUE.\n"
        return json.dumps({"markdown": draft})

    fake.reset(default=computed(gullible))
    result = postmortem(llm_settings, record)
    assert result.author == "console"
    assert result.notes == (
        "LLM rewrite rejected (the rewrite lost the section Actions): "
        "the console's deterministic postmortem is kept",
    )
    assert result.notes[0] in result.markdown
    assert result.markdown.startswith(build_postmortem(None, record=record, **MATERIAL).rstrip())
    # the planted text reached the model only inside the fenced data block
    request = fake.requests[-1]
    user = request.message_text("user")
    assert INJECTION not in request.message_text("system")
    assert user.index(INJECTION) > user.index(FENCE_OPEN) and user.index(INJECTION) < user.rindex(FENCE_CLOSE)
    # and in the postmortem it is quoted as code, not written as prose
    assert f"`payment failed; {INJECTION}`" in result.markdown


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda d: d.replace("| failed: deployer", "| done: deployer"),
            "lost the result of rollback_deployment",
        ),
        (lambda d: d.replace("not resolved", "resolved"), "lost the measured outcome"),
        (
            lambda d: d.replace("## Follow-ups", "## Approve now\n\nyes\n\n## Follow-ups"),
            "changed the sections",
        ),
        (lambda d: d + "\n[Runbook](https://evil.example/approve)\n", "added a link"),
        (lambda d: d + '\n<img src="https://evil.example/p.gif">\n', "added a link"),
        (lambda d: d + "\n<details>more</details>\n", "added HTML"),
        (lambda d: d.replace("v1.3.2", "v1.3.1"), "lost the previous version"),
    ],
    ids=["action-result", "measured", "extra-section", "link", "image", "html", "version"],
)
def test_a_rewrite_that_changes_the_facts_or_adds_links_is_rejected(llm_settings, fake, edit, reason):
    fake.reset(default=rewrite(edit))
    result = postmortem(llm_settings)
    assert result.author == "console"
    assert reason in result.notes[0] and "rewrite rejected" in result.notes[0]
    assert "evil.example" not in result.markdown


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Sure! Here is the postmortem you asked for.", "invalid JSON"),
        (json.dumps({"text": "# Postmortem"}), "schema mismatch"),
        ("", "empty answer"),
    ],
)
def test_garbage_keeps_the_deterministic_text(llm_settings, fake, answer, reason):
    fake.reset(default=content(answer))
    result = postmortem(llm_settings)
    assert result.author == "console" and reason in result.notes[0]
    assert re.findall(r"(?m)^## (.+)$", result.markdown) == list(SECTIONS)


def test_a_timeout_falls_back_within_the_budget(llm_settings, fake):
    fake.reset(default=slow(30.0))  # a valid answer, had the call waited for it
    result = postmortem(replace(llm_settings, llm_timeout_s=0.5))
    assert result.author == "console"
    assert result.notes == (
        "LLM unavailable (timeout after 0.5 s): the console's deterministic postmortem is kept",
    )


def test_without_an_llm_nothing_is_sent(settings, fake):
    result = postmortem(settings)
    assert result.author == "console" and result.notes == () and fake.requests == []
