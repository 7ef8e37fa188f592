"""Taking secrets out of text that leaves the console (notifications, postmortems).

Free text (an approver's comment, an action's failure detail, a log line) can carry what must not be
repeated elsewhere: credentials in a URL (``https://user:pass@host``), a token in a query string, a
Slack webhook path, a bearer token, or a value the settings hold as a secret. :func:`redact` masks
each of them with ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:access_token|api[_-]?key|apikey|auth|key|password|passwd|secret|sig|signature|token)=)"
    r"[^&;#\s]+"
)
_SLACK_HOOK = re.compile(r"(?i)(hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)[^\s\"'<>|]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}")

MIN_SECRET_LENGTH = 4
"""Shorter configured values are not masked (masking "ab" everywhere would mangle the text)."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL credentials, secret query values, Slack webhook paths, bearer tokens and the
    given secret values replaced by ``***``."""
    out = str(text)
    for value in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        out = out.replace(value, MASK)
    out = _URL_CREDENTIALS.sub(rf"\1{MASK}@", out)
    out = _SECRET_QUERY.sub(rf"\1{MASK}", out)
    out = _SLACK_HOOK.sub(rf"\1{MASK}", out)
    return _BEARER.sub(rf"\1\2{MASK}", out)
