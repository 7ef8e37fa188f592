"""Behaviours (what a version of the demo service does wrong, or right) and the versions file.

A behaviour is a flat mapping of the keys in ``DEFAULTS``. Every error is one line naming the
key, so it can go straight into an HTTP 400 or onto a terminal.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

VERSIONS_FILE = Path(__file__).resolve().parent / "versions.yaml"

# Fraction of the declared memory limit from which requests fail with "out of memory".
OOM_THRESHOLD = 0.90
# The leak stops allocating here (fraction of the limit), so the process stays just past the
# threshold instead of growing until the machine's real OOM killer steps in.
LEAK_STOP_FRACTION = 0.95
# Whatever the behaviour says, a process never leaks more than this.
LEAK_HARD_CAP_MB = 512

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")

# key: (minimum, maximum, allows None)
_LIMITS: dict[str, tuple[float, float, bool]] = {
    "latency_ms": (0, 10_000, False),
    "extra_latency_ms": (0, 30_000, False),
    "error_ratio": (0, 1, False),
    "leak_mb_per_s": (0, 200, False),
    "memory_limit_mb": (64, 4096, False),
    "crash_after_s": (0.2, 86_400, True),
}

DEFAULTS: dict[str, Any] = {
    "latency_ms": 40,
    "extra_latency_ms": 0,
    "error_ratio": 0.0,
    "leak_mb_per_s": 0,
    "memory_limit_mb": 512,
    "crash_after_s": None,
}


class BehaviourError(ValueError):
    """A behaviour or versions file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Behaviour:
    latency_ms: float = DEFAULTS["latency_ms"]
    extra_latency_ms: float = DEFAULTS["extra_latency_ms"]
    error_ratio: float = DEFAULTS["error_ratio"]
    leak_mb_per_s: float = DEFAULTS["leak_mb_per_s"]
    memory_limit_mb: float = DEFAULTS["memory_limit_mb"]
    crash_after_s: float | None = DEFAULTS["crash_after_s"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def memory_limit_bytes(self) -> int:
        return int(self.memory_limit_mb * 1024 * 1024)


@dataclass(frozen=True)
class VersionSpec:
    version: str
    description: str
    behaviour: Behaviour

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "description": self.description,
            "behaviour": self.behaviour.to_dict(),
        }


def _number(key: str, value: Any, where: str) -> float | None:
    low, high, nullable = _LIMITS[key]
    if value is None and nullable:
        return None
    # bool is an int in Python; "true" as a latency is a mistake, not 1 ms.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        kind = "a number or null" if nullable else "a number"
        raise BehaviourError(f"{where}.{key} must be {kind} between {low:g} and {high:g} (got {value!r})")
    if not low <= value <= high:
        raise BehaviourError(f"{where}.{key} must be between {low:g} and {high:g} (got {value!r})")
    return float(value)


def parse_behaviour(
    data: Any, base: Behaviour | dict[str, Any] | None = None, where: str = "behaviour"
) -> Behaviour:
    """Validate ``data`` (a mapping of some behaviour keys) on top of ``base`` (default: DEFAULTS).

    Unknown keys are refused by name; a partial mapping keeps the base's other values.
    """
    if not isinstance(data, dict):
        raise BehaviourError(f"{where} must be a mapping of behaviour keys (got {type(data).__name__})")
    for key in data:
        if key not in DEFAULTS:
            known = ", ".join(DEFAULTS)
            raise BehaviourError(f"{where}.{key} is not a behaviour key (known: {known})")
    if isinstance(base, Behaviour):
        merged = base.to_dict()
    else:
        merged = dict(DEFAULTS)
        merged.update(base or {})
    merged.update(data)
    values = {key: _number(key, merged[key], where) for key in DEFAULTS}
    return Behaviour(**values)


def check_version_name(version: Any, where: str = "version") -> str:
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise BehaviourError(
            f"{where} must be a version name of letters, digits and . _ + - (at most 64) (got {version!r})"
        )
    return version


def parse_versions(document: Any, source: str = "versions file") -> dict[str, VersionSpec]:
    """Parse the versions document (already loaded from YAML) into specs keyed by version."""
    if not isinstance(document, dict):
        raise BehaviourError(f"{source}: the top level must be a mapping with 'versions'")
    for key in document:
        if key not in ("defaults", "versions"):
            raise BehaviourError(f"{source}: unknown top-level key {key!r} (known: defaults, versions)")
    defaults = parse_behaviour(document.get("defaults") or {}, where=f"{source}: defaults")
    versions = document.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise BehaviourError(f"{source}: 'versions' must be a non-empty mapping of version name to spec")
    specs: dict[str, VersionSpec] = {}
    for name, spec in versions.items():
        where = f"{source}: versions.{name}"
        check_version_name(name, where=f"{source}: version name")
        if not isinstance(spec, dict):
            raise BehaviourError(f"{where} must be a mapping with description and behaviour")
        for key in spec:
            if key not in ("description", "behaviour"):
                raise BehaviourError(f"{where}: unknown key {key!r} (known: description, behaviour)")
        description = spec.get("description")
        if not isinstance(description, str) or not description.strip():
            raise BehaviourError(f"{where}.description must be a non-empty string")
        behaviour = parse_behaviour(spec.get("behaviour") or {}, base=defaults, where=f"{where}.behaviour")
        specs[name] = VersionSpec(name, description.strip(), behaviour)
    return specs


def load_versions(path: Path | str = VERSIONS_FILE) -> dict[str, VersionSpec]:
    """Read and validate a versions file; any problem is a one-line ``BehaviourError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BehaviourError(f"cannot read versions file {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise BehaviourError(f"{path.name}: invalid YAML{where}: {problem}") from None
    return parse_versions(document, source=path.name)
