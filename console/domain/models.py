"""The loop's data: snapshots in, decisions out, and the records the engines keep.

Everything here is a plain dataclass with ``to_dict``/``from_dict`` so it crosses process
boundaries (Kestra tasks, SQLite JSON columns, the CLI) as JSON without surprises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.domain.evidence import Evidence


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past datetime.max in UTC
        raise ValueError(f"{value!r} is out of range once converted to UTC") from None


def format_time(value: datetime) -> str:
    """The one format the console writes a moment in: RFC 3339 in UTC with a trailing Z, to the
    microsecond when the moment has a fraction of a second."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_text() -> str:
    """The current time as the console stores it: :func:`format_time`, always to the microsecond (a
    fixed width, so that stored times taken now sort as text, and two events of one millisecond keep
    their order)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Verdict(StrEnum):
    CONTINUE = "CONTINUE"
    ROLLBACK = "ROLLBACK"
    ESCALATE = "ESCALATE"


VERDICT_STRICTNESS = {Verdict.CONTINUE: 0, Verdict.ESCALATE: 1, Verdict.ROLLBACK: 2}


def stricter_verdict(a: Verdict, b: Verdict) -> Verdict:
    return a if VERDICT_STRICTNESS[a] >= VERDICT_STRICTNESS[b] else b


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


SEVERITY_ORDER = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


class Risk(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


RISK_ORDER = [Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL]
"""Least to most risky; compare risks with ``RISK_ORDER.index``."""


def highest_risk(actions: list[Any]) -> Risk:
    """The highest ``risk`` among action documents (dicts); LOW when there is none. Values that
    are not a risk (from an engine's stored outputs) are left out."""
    risks = [
        Risk(a["risk"])
        for a in actions
        if isinstance(a, dict) and isinstance(a.get("risk"), str) and a["risk"] in Risk.__members__
    ]
    return max(risks, key=RISK_ORDER.index, default=Risk.LOW)


class Classification(StrEnum):
    """Kayenta's per-metric result."""

    PASS = "Pass"  # noqa: S105 - a verdict, not a password
    HIGH = "High"
    LOW = "Low"
    NODATA = "NoData"


class Direction(StrEnum):
    """Which change of a metric is bad."""

    INCREASE = "increase"  # higher is worse (errors, latency)
    DECREASE = "decrease"  # lower is worse (throughput)
    EITHER = "either"  # unknown metric: any significant change is flagged


@dataclass(frozen=True)
class Deployment:
    id: str
    service: str
    version: str
    deployed_at: datetime
    previous_version: str | None = None
    environment: str = "production"
    deployed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deployed_at"] = format_time(self.deployed_at)
        return data


@dataclass(frozen=True)
class LogRecord:
    ts: datetime
    level: str
    message: str
    source: str | None = None


@dataclass
class Snapshot:
    """Validated snapshot: metric series as parallel lists of epoch seconds and values."""

    deployment: Deployment
    metrics: dict[str, tuple[list[float], list[float]]]
    logs: list[LogRecord]
    evidence: Evidence | None = None
    """Live snapshots: the counts behind the metrics (console/domain/evidence.py)."""

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "deployment": self.deployment.to_dict(),
            "metrics": {
                name: [
                    [format_time(datetime.fromtimestamp(t, UTC)), v]
                    for t, v in zip(times, values, strict=False)
                ]
                for name, (times, values) in self.metrics.items()
            },
            "logs": [
                {
                    "ts": format_time(r.ts),
                    "level": r.level,
                    "message": r.message,
                    **({"source": r.source} if r.source else {}),
                }
                for r in self.logs
            ],
        }
        if self.evidence is not None:
            doc["evidence"] = self.evidence.to_dict()
        return doc


@dataclass
class MetricResult:
    name: str
    classification: Classification
    direction: Direction
    baseline_median: float | None
    after_median: float | None
    p_value: float | None
    effect_size: float | None
    """Cliff's delta of after vs baseline in [-1, 1]."""
    reason: str
    guard: str | None = None
    """Name of the absolute guard this metric tripped, if any."""
    baseline_points: int = 0
    after_points: int = 0
    """Real samples before / after the deploy the result rests on (look-back copies never count)."""
    basis: str = "points"
    """What was compared: ``points`` (the series' points), ``counts`` (requests and errors, or
    histogram bucket counts, against traffic) or ``trend`` (a climb projected to its limit)."""
    dimension: str | None = None
    """The route / handler the result is about (the worst one), when the metrics have one."""
    share: float | None = None
    """That dimension's share of the requests after the deploy."""
    projection: str | None = None
    """For a trend: when the metric reaches its limit, with its interval (one line)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classification"] = self.classification.value
        data["direction"] = self.direction.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricResult:
        values = dict(data)
        values["classification"] = Classification(values["classification"])
        values["direction"] = Direction(values["direction"])
        return cls(**values)


@dataclass
class LogPattern:
    template: str
    level: str
    count_before: int
    count_after: int
    status: str
    """"new", "surging", "steady", "gone"."""
    category: str | None = None
    example: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogPattern:
        return cls(**data)


@dataclass
class RecommendedAction:
    name: str
    risk: Risk
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "risk": self.risk.value, "reason": self.reason, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecommendedAction:
        if not isinstance(data["name"], str):  # the name is looked up in the registry and hashed
            raise ValueError(f"action name must be text, not {type(data['name']).__name__}")
        return cls(
            name=data["name"],
            risk=Risk(data["risk"]),
            reason=data.get("reason", ""),
            params=dict(data.get("params") or {}),
        )


@dataclass
class Decision:
    verdict: Verdict
    severity: Severity
    confidence: float
    summary: str
    root_cause: str
    actions: list[RecommendedAction]
    metrics: list[MetricResult]
    log_patterns: list[LogPattern]
    analyzer: str
    """"rules" or "llm:<model>"."""
    rules_verdict: Verdict | None = None
    llm_verdict: Verdict | None = None
    guards: list[str] = field(default_factory=list)
    """Hard guards that fired (e.g. "error_rate>=0.20"); a fired guard forces ROLLBACK."""
    notes: list[str] = field(default_factory=list)
    """Analyzer notes shown to operators (e.g. "LLM unavailable: timeout, rules summary used")."""
    impact: str = ""
    reasoning: str = ""
    rule: str = ""
    """The name of the verdict rule that fired (console/analysis/verdict.py, ``RULES``)."""

    @property
    def disagreement(self) -> bool:
        return (
            self.llm_verdict is not None
            and self.rules_verdict is not None
            and self.llm_verdict != self.rules_verdict
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "severity": self.severity.value,
            "confidence": round(self.confidence, 4),
            "summary": self.summary,
            "root_cause": self.root_cause,
            "impact": self.impact,
            "reasoning": self.reasoning,
            "actions": [a.to_dict() for a in self.actions],
            "metrics": {m.name: m.to_dict() for m in self.metrics},
            "log_patterns": [p.to_dict() for p in self.log_patterns],
            "analyzer": self.analyzer,
            "rules_verdict": self.rules_verdict.value if self.rules_verdict else None,
            "llm_verdict": self.llm_verdict.value if self.llm_verdict else None,
            "disagreement": self.disagreement,
            "guards": list(self.guards),
            "notes": list(self.notes),
            "rule": self.rule,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        metrics = data.get("metrics") or {}
        metric_items = metrics.values() if isinstance(metrics, dict) else metrics
        return cls(
            verdict=Verdict(data["verdict"]),
            severity=Severity(data["severity"]),
            confidence=float(data["confidence"]),
            summary=data.get("summary", ""),
            root_cause=data.get("root_cause", ""),
            impact=data.get("impact", ""),
            reasoning=data.get("reasoning", ""),
            actions=[RecommendedAction.from_dict(a) for a in data.get("actions", [])],
            metrics=[MetricResult.from_dict(m) for m in metric_items],
            log_patterns=[LogPattern.from_dict(p) for p in data.get("log_patterns", [])],
            analyzer=data.get("analyzer", "rules"),
            rules_verdict=Verdict(data["rules_verdict"]) if data.get("rules_verdict") else None,
            llm_verdict=Verdict(data["llm_verdict"]) if data.get("llm_verdict") else None,
            guards=list(data.get("guards", [])),
            notes=list(data.get("notes", [])),
            rule=str(data.get("rule") or ""),
        )
