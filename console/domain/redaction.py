"""Taking secrets out of text that leaves the console (notifications, postmortems).

Free text (an approver's comment, an action's failure detail, a log line) can carry what must not be
repeated elsewhere: credentials in a URL (``https://user:pass@host``), a token in a query string, a
Slack webhook path, a bearer token, or a value the settings hold as a secret. :func:`redact` masks
each of them with ``***``. A URL the console shows (a setting, a source, an executor's target) goes
through :func:`mask_url`: its user, password, query values and fragment masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def mask_url(url: str) -> str:
    """A URL fit to show: user and password replaced by ``***`` (``https://***@host``), every
    query value and the fragment masked (a query or a fragment may carry a token, whatever its
    name). A URL that does not parse (a bad port may be a password written without its ``@``) is
    ``(not a valid URL)``; text with no scheme is returned as is when it holds no ``@``, else
    masked up to its last ``@``."""
    text = str(url).strip()
    if not text:
        return text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "(not a valid URL)"
    if not parts.scheme or not parts.netloc:
        return f"{MASK}@" + text.rsplit("@", 1)[1] if "@" in text else text
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK) for k, _ in pairs], safe="*") if pairs else MASK
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
