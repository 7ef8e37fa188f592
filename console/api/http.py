"""What every endpoint shares: JSON answers (never HTML), errors as ``{"error": "one line"}``, and a
bounded, checked JSON body.

Untrusted text (a field name from a body, an action's reason, an operator's comment, an LLM
summary) only ever leaves inside a JSON string, and ``<``, ``>`` and ``&`` are written as
``\\u003c``, ``\\u003e``, ``\\u0026`` besides, so even a client that renders the answer as HTML shows
text. Every answer says ``application/json`` with ``nosniff``, is never cached, and may not be
framed.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from console.domain.text import strip_invisible

JSON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
MAX_DEPTH = 64
"""Deeper JSON is refused (400) before it costs anything."""


class ApiError(Exception):
    """An answer other than success: the status, one line, and optional extra JSON and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


def _finite_only(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _finite_only(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_finite_only(v) for v in doc]
    return finite(doc)


def dumps(doc: Any) -> bytes:
    """JSON that is inert in HTML too (see the module's doc); NaN and infinities become null."""
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite_only(doc), ensure_ascii=False, separators=(",", ":"), default=str)
    text = strip_invisible(text)  # no bidi or zero-width control reaches a client, in any string
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8")


class JsonAnswer(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, status_code, {**JSON_HEADERS, **(headers or {})})

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_answer(error: ApiError) -> JsonAnswer:
    return JsonAnswer({"error": error.message, **error.extra}, error.status, error.headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ApiError(400, f"{key[:60]}: given twice in the body")
        out[key] = value
    return out


def _depth(doc: Any) -> int:
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return deepest


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, whole and checked: 413 beyond ``limit`` bytes (announced or read),
    415 unless it says JSON, 400 naming what is wrong otherwise."""
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The request's raw body (a signature is computed over these bytes): 413 beyond ``limit``
    bytes (announced or read), 415 unless it says JSON."""
    announced = request.headers.get("content-length")
    if announced is not None:
        try:
            size = int(announced)
        except ValueError:
            raise ApiError(400, "Content-Length: not a number") from None
        if size > limit:
            raise ApiError(413, f"body too large ({size} bytes; at most {limit})")
    if not _is_json(request.headers.get("content-type", "")):
        raise ApiError(415, "send the body as JSON, with Content-Type: application/json")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise ApiError(413, f"body too large (more than {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """A JSON body checked: 400 naming what is wrong (empty, not UTF-8, not JSON, a key twice,
    NaN, nested too deeply)."""
    if not raw.strip():
        raise ApiError(400, "body: empty (expected a JSON object)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "body: not UTF-8") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "body: nested too deeply") from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            where = f"line {exc.lineno} column {exc.colno}"
            raise ApiError(400, f"body: not valid JSON ({exc.msg} at {where})") from None
        raise ApiError(400, f"body: {exc}") from None
    if _depth(doc) > MAX_DEPTH:
        raise ApiError(400, f"body: nested deeper than {MAX_DEPTH} levels")
    return doc


def finite(value: Any) -> Any:
    """A number JSON can carry (NaN and infinities become null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
