"""Structured JSON-lines logs shared by every process of the demo service.

Several processes append to one file: it is opened with O_APPEND and each line goes out in a single
``os.write``, so lines from different instances never interleave mid-line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demo_service import SERVICE_NAME

LEVELS = ("INFO", "WARN", "ERROR")


def utc_now() -> str:
    """RFC 3339 UTC with milliseconds and a trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def format_line(level: str, message: str, version: str, pid: int, **fields: Any) -> bytes:
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)} (got {level!r})")
    record: dict[str, Any] = {
        "ts": utc_now(),
        "level": level,
        "message": message,
        "service": SERVICE_NAME,
        "version": version,
        "pid": pid,
    }
    record.update({key: value for key, value in fields.items() if value is not None})
    # One line whatever the message holds: json.dumps escapes newlines.
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


class JsonLog:
    """Appends JSON lines to a file (and nothing else); thread-safe and process-safe."""

    def __init__(self, path: Path | str, version: str, **defaults: Any) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.version = version
        self.defaults = defaults
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._lock = threading.Lock()

    def log(self, level: str, message: str, *, version: str | None = None, **fields: Any) -> None:
        line = format_line(level, message, version or self.version, os.getpid(), **self.defaults, **fields)
        try:
            with self._lock:
                if self._fd < 0:
                    return
                os.write(self._fd, line)
        except OSError as exc:  # a full disk must not take the service down with it
            print(f"demo-service: cannot write log line: {exc}", file=sys.stderr)

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warn(self, message: str, **fields: Any) -> None:
        self.log("WARN", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
