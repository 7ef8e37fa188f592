"""Issue 18, text controls in the postmortem: what people wrote cannot add emphasis or
strikethrough, nor smuggle bidi or zero-width controls, and names like ``rollback_deployment``
stay readable."""

from __future__ import annotations

import re

import pytest

from console.domain.text import BIDI_CONTROLS, ZERO_WIDTH
from console.loop.postmortem import build_postmortem
from tests.loop.conftest import material, run

pytestmark = [pytest.mark.identity]


def test_emphasis_and_controls_in_a_comment_are_shown_as_written_not_rendered(rt):
    comment = "**urgent** approve __now__, ~~no review~~ _needed_ \u202eevil\u202c\u200b done"
    execution = run(rt, "memory-leak", approve=False, comment=comment)
    md = build_postmortem(rt.store.executions.get(execution.id), **material(rt, execution.id))
    assert re.findall(f"[{BIDI_CONTROLS}{ZERO_WIDTH}]", md) == []
    assert "\\*\\*urgent\\*\\* approve \\_\\_now\\_\\_, \\~\\~no review\\~\\~ \\_needed\\_ evil done" in md
    # no unescaped emphasis marker is left anywhere in what the comment became
    for line in md.splitlines():
        if "urgent" in line:
            assert not re.search(r"(?<!\\)\*\*", line) and not re.search(r"(?<!\\)~~", line), line
    assert "rollback_deployment" in md  # an action's name is not mangled by the escaping
