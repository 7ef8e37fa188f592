"""Issue 18, text controls: a right-to-left override or a zero-width character someone typed never
leaves the console in a notification (Slack or the generic webhook)."""

from __future__ import annotations

import json
import re

import pytest

from console.access.auth import Identity, Role
from console.domain.text import BIDI_CONTROLS, ZERO_WIDTH
from tests.notify.conftest import dispatcher, paused

pytestmark = [pytest.mark.identity]

CONTROLS = "\u202e\u202a\u2066\u200e\u200f\u061c\u200b\u200c\u200d\u2060\ufeff"


def controls_in(text: str) -> list[str]:
    return re.findall(f"[{BIDI_CONTROLS}{ZERO_WIDTH}]", text)


def test_bidi_and_zero_width_controls_of_a_comment_never_reach_slack_or_the_webhook(runtime, receiver):
    _, approval = paused(runtime)
    d = dispatcher(runtime)
    d.run_once()
    # "approve" written backwards behind a right-to-left override reads as "approve" on screen
    comment = "\u202eevorppa\u202c looks fine to me" + CONTROLS
    runtime.approvals.vote(approval["id"], Identity("bob", Role.APPROVER), False, comment)
    assert d.run_once().delivered == 2
    bodies = [r.body for r in receiver.received]
    assert bodies, "nothing was posted"
    for body in bodies:
        raw = json.dumps(body, ensure_ascii=False)
        assert controls_in(raw) == [], raw
    rejected = [r.body for r in receiver.received if isinstance(r.body, dict) and r.body.get("kind")]
    assert rejected[-1]["approval"]["comment"] == "evorppa looks fine to me"
