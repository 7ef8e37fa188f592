"""Where messages go, and one attempt to post one there.

Two channels, both optional: ``slack`` (a Slack-compatible incoming webhook, ``NOTIFY_SLACK_WEBHOOK_URL``)
and ``webhook`` (any JSON receiver, ``NOTIFY_WEBHOOK_URL``, with ``Authorization: Bearer
NOTIFY_WEBHOOK_TOKEN`` when that is set). Both URLs are secrets: an attempt's result names the channel,
never its URL, and never quotes a library's error text (``requests`` puts the URL in it).

An attempt is retryable when the receiver may answer next time: a 5xx, a 429 (rate limited; its
``Retry-After`` is honoured), a timeout, a refused or dropped connection. Any other 4xx is final: the
same message would be refused again. A redirect is not followed (the message would go to a host
nobody configured) and is final too.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests

from console.domain.redaction import redact
from console.settings import Secret, Settings

USER_AGENT = "devops-loop-console/notify"


@dataclass(frozen=True)
class Channel:
    name: str
    url: Secret = field(repr=False)
    token: Secret = field(default_factory=lambda: Secret(""), repr=False)


@dataclass(frozen=True)
class Attempt:
    """The result of one POST: delivered, or why not (one line) and whether to try again."""

    delivered: bool
    retryable: bool = False
    reason: str = ""
    retry_after_s: float | None = None


class _RedactingFilter(logging.Filter):
    """Masks the channels' secrets in a library's log records: urllib3 logs each request's path at
    DEBUG level, and a Slack webhook's path is its credential."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = redact(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_LIBRARY_FILTER = _RedactingFilter()
_LIBRARY_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests")


def guard_library_logs(secrets: list[str]) -> None:
    """Mask ``secrets`` (and webhook paths, URL credentials) in the HTTP libraries' own log records."""
    _LIBRARY_FILTER.secrets.update(s for s in secrets if s)
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _LIBRARY_FILTER not in logger.filters:
            logger.addFilter(_LIBRARY_FILTER)


def configured_channels(settings: Settings) -> dict[str, Channel]:
    """The channels the settings configure, by name."""
    out: dict[str, Channel] = {}
    if settings.notify_slack_webhook_url:
        out["slack"] = Channel("slack", settings.notify_slack_webhook_url)
    if settings.notify_webhook_url:
        out["webhook"] = Channel("webhook", settings.notify_webhook_url, settings.notify_webhook_token)
    return out


_WORDS = re.compile(r"[^A-Za-z0-9_.:/ -]+")


def _answer(response: requests.Response, secrets: list[str]) -> str:
    """A short, plain excerpt of a refusal (Slack answers e.g. ``invalid_payload``): letters, digits
    and a little punctuation, secrets masked, 80 characters at most."""
    try:
        text = response.text or ""
    except (requests.RequestException, UnicodeDecodeError):
        return ""
    return " ".join(_WORDS.sub(" ", redact(text[:400], secrets)).split())[:80]


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=host))


def post(
    channel: Channel,
    payload: dict,
    *,
    timeout_s: float,
    idempotency_key: str,
    secrets: list[str] | None = None,
) -> Attempt:
    """POST ``payload`` as JSON to ``channel``; never raises for a network or HTTP failure."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": idempotency_key,
    }
    url = channel.url.get()
    if channel.token:
        headers["Authorization"] = f"Bearer {channel.token.get()}"
        url = _without_credentials(url)  # else requests would replace the bearer token by basic auth
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(min(timeout_s, 5.0), timeout_s),
            allow_redirects=False,
        )
    except requests.Timeout:
        return Attempt(False, True, f"no answer within {timeout_s:g} s")
    except requests.exceptions.SSLError:
        return Attempt(False, True, "TLS error")
    except requests.ConnectionError as exc:
        text = str(exc)
        if "refused" in text.lower():
            reason = "connection refused"
        elif "Name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
            reason = "host name not resolved"
        else:
            reason = "connection failed"
        return Attempt(False, True, reason)
    except requests.RequestException as exc:
        return Attempt(False, False, f"request failed ({type(exc).__name__})")
    with response:
        code = response.status_code
        if 200 <= code < 300:
            return Attempt(True)
        excerpt = _answer(response, secrets or [])
        reason = f"HTTP {code}" + (f": {excerpt}" if excerpt else "")
        if 300 <= code < 400:
            return Attempt(False, False, f"HTTP {code}: redirect not followed")
        if code == 429:
            return Attempt(False, True, reason, _retry_after(response))
        return Attempt(False, code >= 500, reason, _retry_after(response) if code >= 500 else None)
