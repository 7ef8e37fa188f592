"""One-line descriptions of HTTP failures, shared by the demo-service and webhook executors."""

from __future__ import annotations

import json
import os

import requests

from console.domain.redaction import mask_url
from console.domain.text import one_line
from console.executors.base import ActionFailed


def read_secret(env_name: str | None, what: str) -> str | None:
    """The secret held by environment variable ``env_name`` (None when no variable is configured);
    ActionFailed naming the variable (never a value) when it is configured but unset."""
    if not env_name:
        return None
    value = os.environ.get(env_name, "")
    if not value:
        raise ActionFailed(f"{what} missing: environment variable {env_name} is not set")
    return value


def request_error(exc: requests.RequestException, who: str, url: str, timeout_s: float) -> str:
    """``who`` (e.g. "deployer") failed to answer ``url``: one line, no secrets, no traceback."""
    where = mask_url(url)
    if isinstance(exc, requests.ConnectTimeout):
        return f"{who} unreachable at {where}: no connection within {timeout_s:g} s"
    if isinstance(exc, requests.Timeout):
        return f"{who} did not answer within {timeout_s:g} s ({where})"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"{who} unreachable at {where}: TLS error"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "ECONNREFUSED" in text:
            reason = "connection refused"
        elif "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            reason = "host name not resolved"
        elif "RemoteDisconnected" in text or "Connection aborted" in text:
            reason = "connection closed without an answer"
        else:
            reason = "connection failed"
        return f"{who} unreachable at {where}: {reason}"
    return f"{who} request to {where} failed: {type(exc).__name__}"


def maybe_sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the other side before ``exc``: a read timeout, or a
    connection closed or reset while waiting for the answer. A connect timeout, a refused
    connection or an unresolved name mean it never left."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.Timeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        never = ("Connection refused", "ECONNREFUSED", "Name or service not known", "getaddrinfo")
        return not any(word in text for word in never) and not isinstance(exc, requests.exceptions.SSLError)
    return False


def answer_excerpt(response: requests.Response, limit: int = 200) -> str:
    """The ``{"error": ...}`` line of a JSON error answer, else a bounded one-line excerpt of the body."""
    text = response.text or ""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("error", "message", "detail"):
            if isinstance(doc.get(key), str) and doc[key].strip():
                return one_line(doc[key], limit)
    return one_line(text, limit) if text.strip() else (response.reason or "no body")


def json_body(response: requests.Response) -> object | None:
    """The parsed JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
