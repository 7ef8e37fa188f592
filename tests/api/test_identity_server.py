"""Issue 18 on the real server (``streamlit run server.py``, uvicorn in front): an ``X-Forwarded-For``
from a peer that is not a configured proxy is ignored, so a guesser who sends a new one with every
request is throttled like anyone else, and a valid token from the same address still gets in."""

from __future__ import annotations

import pytest
import requests

pytestmark = [pytest.mark.identity, pytest.mark.slow]

TOKEN = "identity-server-token-0123456789"


def test_forwarded_addresses_from_an_untrusted_peer_do_not_escape_the_failure_limit(start_console):
    server = start_console(CONSOLE_API_TOKEN=TOKEN, CONSOLE_API_BURST="40")
    url = f"{server.url}/api/approvals"
    statuses = [
        requests.get(
            url,
            headers={"Authorization": f"Bearer guess-{i}", "X-Forwarded-For": f"203.0.113.{i}"},
            timeout=10,
        ).status_code
        for i in range(14)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 4, statuses
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 200
    assert TOKEN not in server.log_text()
