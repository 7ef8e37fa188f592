"""Deployment records, kept as JSON lines under the deployer's state directory.

The file is the only source of truth: a restarted deployer replays it to know the current version,
its behaviour and the version that ran before it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo_service import SERVICE_NAME
from demo_service.behaviour import Behaviour, BehaviourError, parse_behaviour

KINDS = ("deploy", "rollback", "restart")


class HistoryError(ValueError):
    """The history file cannot be used; the message is one line."""


@dataclass
class ServiceState:
    """What runs (or should run) now, and what ran before it."""

    version: str
    behaviour: Behaviour
    previous_version: str | None = None
    deployment_id: str | None = None
    """The record of the switch (deploy or rollback) that put ``version`` in place."""
    switched_at: str | None = None

    def advance(self, record: dict[str, Any]) -> None:
        """Apply one successful deployment record (a restart changes nothing but the instance)."""
        if record["kind"] == "restart":
            return
        if record["version"] != self.version:
            self.previous_version = self.version
        self.version = record["version"]
        self.behaviour = parse_behaviour(record["behaviour"], where=f"deployment {record['id']} behaviour")
        self.deployment_id = record["id"]
        self.switched_at = record["at"]


def new_record(
    *,
    kind: str,
    version: str,
    previous_version: str | None,
    by: str,
    at: str,
    behaviour: Behaviour,
    reason: str | None = None,
    duration_ms: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    return {
        "id": "dep-" + uuid.uuid4().hex[:12],
        "service": SERVICE_NAME,
        "version": version,
        "previous_version": previous_version,
        "by": by,
        "at": at,
        "kind": kind,
        "behaviour": behaviour.to_dict(),
        "reason": reason,
        "duration_ms": duration_ms,
        "idempotency_key": idempotency_key,
    }


def _check_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError("not an object")
    for key in ("id", "version", "by", "at", "kind", "behaviour"):
        if key not in record:
            raise ValueError(f"missing {key!r}")
    if record["kind"] not in KINDS:
        raise ValueError(f"unknown kind {record['kind']!r}")
    parse_behaviour(record["behaviour"])
    return record


class DeploymentHistory:
    """Append-only JSON-lines file of deployment records; reads are served from memory."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self.skipped: list[str] = []  # one line per unreadable record, for the deployer's log
        self._lock = threading.Lock()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        except OSError as exc:
            raise HistoryError(f"cannot read deployment history {self.path}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                self.records.append(_check_record(json.loads(line)))
            except (ValueError, BehaviourError) as exc:
                # A line cut short by a crash mid-write must not make the history unusable.
                self.skipped.append(f"{self.path.name} line {number} skipped: {exc}")

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.records.append(record)

    def newest_first(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self.records[-limit:])) if limit > 0 else []

    def by_key(self, key: str) -> dict[str, Any] | None:
        """The record a switch with this idempotency key left, if any (it survives a restart)."""
        with self._lock:
            return next((r for r in reversed(self.records) if r.get("idempotency_key") == key), None)

    def behaviour_of(self, version: str) -> Behaviour | None:
        """The behaviour ``version`` last ran with, if it was ever deployed."""
        with self._lock:
            for record in reversed(self.records):
                if record["version"] == version:
                    return parse_behaviour(record["behaviour"])
        return None

    def replay(self, initial: ServiceState) -> ServiceState:
        """The state after every record, starting from ``initial`` (used when nothing is recorded)."""
        state = ServiceState(initial.version, initial.behaviour, initial.previous_version)
        with self._lock:
            if self.records:
                state.version = self.records[0].get("previous_version") or state.version
            for record in self.records:
                state.advance(record)
        return state
