"""Log sources: a service's JSON-lines file, and Loki's ``query_range``.

Both return :class:`LogsResult`: records in the snapshot's shape (``ts``, ``level``, ``message``,
``source``), in time order, at most ``max_lines`` of them (the first ones of the window; a note
says when the window held more), and notes on what was skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from console.domain.text import one_line
from console.settings import Secret
from console.telemetry._http import ErrorKinds, HttpClient, body_excerpt
from console.telemetry.config import JsonlLogsConfig, LokiLogsConfig, resolve_secret
from console.telemetry.errors import (
    LogSourceError,
    LokiAuthError,
    LokiBadResponse,
    LokiError,
    LokiQueryError,
    LokiServerError,
    LokiTimeout,
    LokiUnreachable,
)
from console.telemetry.times import Instant, format_ts, parse_rfc3339, to_epoch

MAX_MESSAGE_CHARS = 8000
"""Longer messages are cut (a stack trace in one line can be megabytes)."""
MAX_LEVEL_CHARS = 20  # the snapshot schema's limit
LEVEL_ALIASES = {"WARNING": "WARN", "ERR": "ERROR", "CRIT": "CRITICAL", "INFORMATION": "INFO"}


@dataclass
class LogsResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cut: bool = False
    """The window held more lines than ``max_lines``."""
    malformed: int = 0


def _record(ts: float, level: Any, message: Any, source: str | None) -> dict[str, Any]:
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    lvl = str(level).strip().upper()[:MAX_LEVEL_CHARS] if level not in (None, "") else "INFO"
    lvl = LEVEL_ALIASES.get(lvl, lvl)
    record: dict[str, Any] = {"ts": format_ts(ts), "level": lvl, "message": text}
    if source:
        record["source"] = source
    return record


def _line_time(obj: dict[str, Any]) -> float:
    """The ``ts`` of one decoded line as Unix seconds. Raises ValueError/TypeError."""
    ts = obj["ts"]
    if isinstance(ts, bool):
        raise TypeError("ts is a boolean")
    if isinstance(ts, int | float):
        value = float(ts)
    elif isinstance(ts, str):
        value = parse_rfc3339(ts).timestamp()
    else:
        raise TypeError(f"ts is {type(ts).__name__}")
    if not math.isfinite(value):
        raise ValueError("ts is not finite")
    return value


class JsonlLogSource:
    """The service's JSON-lines log file (``{"ts", "level", "message", ...}`` per line).

    The file is assumed append-only in roughly time order (lines of concurrent processes may be a
    little out of order): the window's start is found by bisecting on byte offsets, then lines are
    read forward until a line is past the window's end by more than ``slack_s``. A window at the
    end of a 1 GB file costs a few dozen seeks, not a read of the file. Lines out of order by more
    than ``slack_s`` near the window's edges can be missed.
    """

    PROBE_LINES = 64
    """Malformed lines a bisection probe skips before it gives up on that offset."""
    LINEAR_BYTES = 64 * 1024
    """Below this distance the bisection stops and the scan reads forward."""

    def __init__(
        self, path: Path, *, max_lines: int = 10_000, source: str | None = None, slack_s: float = 5.0
    ) -> None:
        self.path = Path(path)
        self.max_lines = max_lines
        self.source = source
        self.slack_s = slack_s

    @classmethod
    def from_config(cls, config: JsonlLogsConfig) -> JsonlLogSource:
        return cls(config.path, max_lines=config.max_lines, source=config.source)

    def __repr__(self) -> str:
        return f"JsonlLogSource({str(self.path)!r}, max_lines={self.max_lines})"

    # -- bisection ------------------------------------------------------------------------------

    @staticmethod
    def _line_start_at_or_after(fh: IO[bytes], offset: int) -> int:
        if offset <= 0:
            fh.seek(0)
            return 0
        fh.seek(offset - 1)
        fh.readline()  # the rest of the line holding offset - 1 (ends at a line start)
        return fh.tell()

    def _probe(self, fh: IO[bytes], offset: int) -> float | None:
        """The time of the first parseable line starting at or after ``offset`` (None at EOF)."""
        self._line_start_at_or_after(fh, offset)
        for _ in range(self.PROBE_LINES):
            line = fh.readline()
            if not line:
                return None
            try:
                return _line_time(json.loads(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
        return None

    def _seek_start(self, fh: IO[bytes], size: int, target: float) -> int:
        """A line start before which every (parseable) line is older than ``target``."""
        lo, hi = 0, size
        while hi - lo > self.LINEAR_BYTES:
            mid = (lo + hi) // 2
            found = self._probe(fh, mid)
            if found is None or found >= target:
                hi = mid
            else:
                lo = mid
        return self._line_start_at_or_after(fh, lo)

    # -- reading --------------------------------------------------------------------------------

    def read(
        self, start: Instant, end: Instant, *, max_lines: int | None = None, include_end: bool = True
    ) -> LogsResult:
        """Lines with ``start <= ts <= end`` (``< end`` without ``include_end``), at most
        ``max_lines`` (default: the source's)."""
        start_s, end_s = to_epoch(start), to_epoch(end)
        limit = self.max_lines if max_lines is None else max_lines
        result = LogsResult()
        first_bad: tuple[int, str] | None = None
        kept: list[tuple[float, dict[str, Any]]] = []
        with self._open() as fh:
            offset = self._seek_start(fh, os.fstat(fh.fileno()).st_size, start_s - self.slack_s)
            for at, line in _lines_from(fh, offset):
                try:
                    ts, obj, message = _parsed(line)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    result.malformed += 1
                    first_bad = first_bad or (at, _why_malformed(exc))
                    continue
                if ts > end_s + self.slack_s:
                    break  # past the window and the slack of lines out of order
                if ts < start_s or ts > end_s or (ts == end_s and not include_end):
                    continue
                if len(kept) >= limit:
                    result.cut = True
                    break
                kept.append((ts, _record(ts, obj.get("level"), message, self._source_of(obj))))
        kept.sort(key=lambda item: item[0])  # stable: lines at the same moment keep file order
        result.records = [record for _, record in kept]
        last_kept = max([0.0, *(ts for ts, _ in kept)])
        result.notes.extend(self._notes(result, first_bad, limit, last_kept))
        return result

    def _open(self) -> IO[bytes]:
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            raise LogSourceError(f"log file {self.path} does not exist") from None
        except OSError as exc:
            raise LogSourceError(f"log file {self.path} cannot be read: {exc.strerror or exc}") from None

    def _notes(
        self, result: LogsResult, first_bad: tuple[int, str] | None, limit: int, last_kept: float
    ) -> list[str]:
        """What the reader skipped (malformed lines, the first one's place and why) and where it cut."""
        notes = []
        name = self.path.name
        if result.malformed and first_bad is not None:
            plural = "s" if result.malformed != 1 else ""
            notes.append(
                f"logs: skipped {result.malformed} malformed line{plural} in {name} "
                f"(first at byte {first_bad[0]}: {first_bad[1]})"
            )
        if result.cut:
            notes.append(
                f"logs: cut at {limit:,} lines from {name}: lines after {format_ts(last_kept)} "
                "in that window were left out"
            )
        return notes

    def _source_of(self, obj: dict[str, Any]) -> str | None:
        """The configured source, else ``service@version`` of the line (which instance wrote it)."""
        if self.source:
            return self.source
        service, version = obj.get("service"), obj.get("version")
        if isinstance(service, str) and isinstance(version, str):
            return f"{service}@{version}"
        if isinstance(service, str):
            return service
        return self.path.name


def _lines_from(fh: IO[bytes], offset: int) -> Iterator[tuple[int, bytes]]:
    """The lines that are not blank from ``offset`` (a line start) on, each with its byte offset."""
    fh.seek(offset)
    for line in iter(fh.readline, b""):
        if line.strip():
            yield offset, line
        offset += len(line)


def _parsed(line: bytes) -> tuple[float, dict[str, Any], Any]:
    """(ts, the object, its message) of one line; raises on a line that is not one."""
    obj = json.loads(line)
    return _line_time(obj), obj, obj["message"]


def _why_malformed(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "not JSON"
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r}"
    if isinstance(exc, AttributeError):
        return "not a JSON object"
    return f"bad ts ({one_line(exc, 80)})"


# -- Loki ---------------------------------------------------------------------------------------

LOKI_KINDS = ErrorKinds(
    unreachable=LokiUnreachable,
    timeout=LokiTimeout,
    auth=LokiAuthError,
    query=LokiQueryError,
    server=LokiServerError,
    bad_response=LokiBadResponse,
)
LEVEL_LABELS = ("level", "detected_level", "severity", "lvl")
LEVEL_IN_TEXT = re.compile(r"\b(FATAL|CRITICAL|ERROR|WARN(?:ING)?|INFO|DEBUG|TRACE)\b", re.IGNORECASE)
NS = 1_000_000_000


class LokiSource:
    """Loki's ``/loki/api/v1/query_range`` for a LogQL log query, paged forward.

    Each page asks for ``page_size`` entries from ``start``; the next page starts at the last
    timestamp returned (inclusive) and skips the entries already seen at exactly that nanosecond,
    so entries sharing a timestamp across a page boundary are neither lost nor duplicated.
    """

    def __init__(
        self,
        config: LokiLogsConfig,
        *,
        token: Secret | None = None,
        password: Secret | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        headers = {"X-Scope-OrgID": config.tenant} if config.tenant else {}
        basic = (config.username, password or Secret("")) if config.username else None
        self._client = HttpClient(
            "Loki",
            config.url,
            LOKI_KINDS,
            timeout_s=config.timeout_s,
            bearer=token,
            basic=basic,
            headers=headers,
            ca_file=str(config.ca_file) if config.ca_file else None,
            session=session,
        )

    @classmethod
    def from_config(
        cls,
        config: LokiLogsConfig,
        env: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> LokiSource:
        token = resolve_secret(config.token_env, f"{config.where}.token_env", env)
        password = resolve_secret(config.password_env, f"{config.where}.password_env", env)
        return cls(config, token=token, password=password, session=session)

    @property
    def max_lines(self) -> int:
        return self.config.max_lines

    def __repr__(self) -> str:
        return f"LokiSource({self._client!r}, tenant={self.config.tenant!r})"

    def _page(self, start_ns: int, end_ns: int, limit: int) -> list[tuple[int, str, dict[str, str]]]:
        params = {
            "query": self.config.query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(limit),
            "direction": "forward",
        }
        response = self._client.send("GET", "/loki/api/v1/query_range", params=params)
        status = response.status_code
        where = self._client.where
        if status == 400:
            raise LokiQueryError(f"Loki rejected the LogQL query (HTTP 400): {_loki_reason(response)}")
        if status == 404:
            raise LokiBadResponse(
                f"{where} has no /loki/api/v1/query_range (HTTP 404): check the URL (the Loki "
                "server or its gateway, with its path prefix if it has one)"
            )
        if status in (429, 503, 504):
            raise LokiTimeout(
                f"{where} could not run the query now (HTTP {status} {response.reason}): "
                f"{_loki_reason(response)}"
            )
        if status >= 500:
            raise LokiServerError(
                f"{where} failed (HTTP {status} {response.reason}): {_loki_reason(response)}"
            )
        if status >= 400:
            raise LokiError(f"{where} answered HTTP {status} {response.reason}: {_loki_reason(response)}")
        doc = self._client.json(response)
        try:
            data = doc["data"]
            if doc.get("status") != "success":
                raise ValueError(f"status {doc.get('status')!r}")
            if data.get("resultType") != "streams":
                raise LokiQueryError(
                    f"the LogQL query is a metric query (result {data.get('resultType')!r}); "
                    'the logs source needs a log query such as {app="payment"} |= "error"'
                )
            entries: list[tuple[int, str, dict[str, str]]] = []
            for stream in data["result"]:
                labels = stream.get("stream") or {}
                for value in stream["values"]:
                    entries.append((int(value[0]), str(value[1]), labels))
        except LokiError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise LokiBadResponse(
                f"{where} answered query_range in an unexpected shape: {one_line(exc, 160)}"
            ) from None
        entries.sort(key=lambda e: e[0])  # streams come one after another; merge them by time
        return entries

    def read(
        self, start: Instant, end: Instant, *, max_lines: int | None = None, include_end: bool = True
    ) -> LogsResult:
        """Entries with ``start <= ts <= end`` (``< end`` without ``include_end``). Loki's own end
        is exclusive: with ``include_end`` it is asked for end + 1 ns."""
        start_ns = round(to_epoch(start) * NS)
        end_ns = round(to_epoch(end) * NS) + (1 if include_end else 0)
        limit = self.config.max_lines if max_lines is None else max_lines
        result = LogsResult()
        # entries already kept at exactly ``cursor`` (the next page starts there, inclusive)
        seen: set[tuple[int, str, tuple[tuple[str, str], ...]]] = set()
        cursor = start_ns
        while True:
            # one entry more than still fits tells whether the window holds more than max_lines;
            # a page always reaches past the entries already seen at the cursor
            page_size = max(min(self.config.page_size, limit - len(result.records) + 1), len(seen) + 1)
            entries = self._page(cursor, end_ns, page_size)
            fresh = 0
            for ts_ns, line, labels in entries:
                key = (ts_ns, line, tuple(sorted(labels.items())))
                if ts_ns == cursor and key in seen:
                    continue
                if len(result.records) >= limit:
                    result.cut = True
                    break
                result.records.append(self._record(ts_ns, line, labels))
                fresh += 1
            if result.cut or len(entries) < page_size:
                break
            if fresh == 0:  # only a server that ignores start/limit gets here; never loop on it
                result.notes.append(
                    f"logs: Loki answered the same {len(entries)} entries again at {format_ts(cursor / NS)}; "
                    "the rest of the window was left out"
                )
                break
            last = entries[-1][0]
            if last != cursor:
                seen = set()
            seen |= {(t, ln, tuple(sorted(lb.items()))) for t, ln, lb in entries if t == last}
            cursor = last
        if result.cut:
            last_ts = result.records[-1]["ts"] if result.records else format_ts(start_ns / NS)
            result.notes.append(
                f"logs: cut at {limit:,} lines from Loki: lines after {last_ts} in that window were left out"
            )
        return result

    def _record(self, ts_ns: int, line: str, labels: dict[str, str]) -> dict[str, Any]:
        level: Any = next((labels[k] for k in LEVEL_LABELS if labels.get(k)), None)
        message: Any = line
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "message" in obj:
                message = obj["message"]
                level = level or obj.get("level")
        if level is None:
            found = LEVEL_IN_TEXT.search(line[:200])
            level = found.group(1) if found else "INFO"
        source = self.config.source or _labels_source(labels)
        return _record(ts_ns / NS, level, message, source)


def _labels_source(labels: Mapping[str, str]) -> str | None:
    if not labels:
        return None
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _loki_reason(response: requests.Response) -> str:
    """Loki answers errors as plain text; some gateways and newer versions send JSON."""
    try:
        doc = response.json()
    except ValueError:
        return body_excerpt(response, 240)
    if isinstance(doc, dict):
        for key in ("message", "error"):
            if isinstance(doc.get(key), str):
                return one_line(doc[key], 240)
    return body_excerpt(response, 240)
