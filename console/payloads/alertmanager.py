"""Alertmanager's webhook (payload version 4): parse and check a delivery, map each alert to a service
and a severity.

The shape (Alertmanager's ``webhook_config`` receiver, documented at
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config and checked against
Alertmanager 0.25 in ``../shared/observability/NOTES.md``)::

    {"version": "4", "groupKey": "{}:{alertname=\\"HighErrorRate\\"}", "truncatedAlerts": 0,
     "status": "firing", "receiver": "console",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "http://alertmanager:9093",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "2026-11-29T17:00:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus:9090/graph?...", "fingerprint": "c7a0b1f3e2d4a5b6"}]}

Every field is checked (one :class:`~console.payloads.errors.PayloadError` naming the first field at
fault); fields a later Alertmanager may add are ignored, so an upgrade does not break the receiver.
Alertmanager retries a delivery that did not get a 2xx, so a receiver must be idempotent: an alert's
:attr:`Alert.delivery_key` (group key + fingerprint + startsAt) is the same on every retry.
``truncatedAlerts`` counts alerts Alertmanager left out (``max_alerts``); it is kept, never an error.

The label mapping (:class:`AlertMapping`, from the settings ``CONSOLE_ALERT_*``): the service is the
first of the labels ``service``, ``job``, ``app`` an alert has; the severity is the ``severity``
label mapped by :data:`DEFAULT_SEVERITY_MAP` (plus ``CONSOLE_ALERT_SEVERITY_MAP``), and
``CONSOLE_ALERT_DEFAULT_SEVERITY`` (MEDIUM: it needs an approval) when the label is absent or
unknown, with a note saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from console.domain.models import Severity, format_time
from console.domain.text import kind_of
from console.payloads import fields
from console.payloads.errors import AlertMappingError, PayloadError
from console.settings import Settings

VERSION = "4"
ZERO_TIME_YEAR = 1
"""Alertmanager sends Go's zero time (0001-01-01T00:00:00Z) as ``endsAt`` while an alert fires."""
MAX_ALERTS = 1000
MAX_GROUP_KEY = 4096
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_SEVERITY_MAP: Mapping[str, Severity] = {
    "critical": Severity.CRITICAL,
    "page": Severity.HIGH,
    "error": Severity.HIGH,
    "high": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "warn": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "minor": Severity.MEDIUM,
    "info": Severity.LOW,
    "informational": Severity.LOW,
    "low": Severity.LOW,
    "none": Severity.LOW,
}
"""Severity label values (case-insensitive) and what they mean to the loop. ``page`` wakes a human
(HIGH: escalate, one approver); ``critical`` is the only value that needs two approvers."""


@dataclass(frozen=True)
class AlertMapping:
    """Which labels say an alert's service and severity, and how severity values map."""

    service_labels: tuple[str, ...] = ("service", "job", "app")
    severity_label: str = "severity"
    severity_map: Mapping[str, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITY_MAP))
    default_severity: Severity = Severity.MEDIUM

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertMapping:
        """The mapping the settings describe; :class:`AlertMappingError` names a bad setting."""
        names = tuple(n.strip() for n in settings.alert_service_labels.split(",") if n.strip())
        if not names or not all(_LABEL_NAME.match(n) for n in names):
            raise AlertMappingError(
                "CONSOLE_ALERT_SERVICE_LABELS must be label names separated by commas (e.g. service,job,app)"
            )
        severity_label = settings.alert_severity_label.strip()
        if not _LABEL_NAME.match(severity_label):
            raise AlertMappingError("CONSOLE_ALERT_SEVERITY_LABEL must be a label name")
        severity_map = dict(DEFAULT_SEVERITY_MAP)
        for pair in filter(None, (p.strip() for p in settings.alert_severity_map.split(","))):
            value, sep, target = pair.partition("=")
            severity = _severity(target) if sep else None
            if not value.strip() or severity is None:
                raise AlertMappingError(
                    "CONSOLE_ALERT_SEVERITY_MAP must be value=SEVERITY pairs separated by commas "
                    "(e.g. sev1=CRITICAL,sev2=HIGH), SEVERITY one of LOW, MEDIUM, HIGH, CRITICAL"
                )
            severity_map[value.strip().lower()] = severity
        default = _severity(settings.alert_default_severity)
        if default is None:
            raise AlertMappingError("CONSOLE_ALERT_DEFAULT_SEVERITY must be LOW, MEDIUM, HIGH or CRITICAL")
        return cls(names, severity_label, severity_map, default)

    def service_of(self, labels: Mapping[str, str]) -> tuple[str | None, str | None]:
        """(service, the label it came from), or (None, None) when no service label is set."""
        for name in self.service_labels:
            value = (labels.get(name) or "").strip()
            if value:
                return value, name
        return None, None

    def severity_of(self, labels: Mapping[str, str]) -> tuple[Severity, str | None]:
        """(severity, a note when the default was used)."""
        raw = (labels.get(self.severity_label) or "").strip()
        if not raw:
            return self.default_severity, (
                f"no {self.severity_label} label: {self.default_severity.value} (the default)"
            )
        mapped = self.severity_map.get(raw.lower()) or _severity(raw)
        if mapped is None:
            shown = raw if len(raw) <= 40 else raw[:39] + "…"
            return self.default_severity, (
                f"{self.severity_label}={shown!r} is not in the mapping: "
                f"{self.default_severity.value} (the default)"
            )
        return mapped, None


def _severity(value: str) -> Severity | None:
    try:
        return Severity(value.strip().upper())
    except ValueError:
        return None


DEFAULT_MAPPING = AlertMapping()


@dataclass(frozen=True)
class Alert:
    """One alert of a delivery, checked and mapped."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    """RFC 3339 UTC with Z (Alertmanager's nanoseconds kept to microseconds)."""
    ends_at: str | None
    """None while firing (Alertmanager sends Go's zero time)."""
    generator_url: str
    fingerprint: str
    group_key: str
    service: str | None
    """From the first service label the mapping names; None when the alert has none."""
    service_label: str | None
    severity: Severity
    notes: tuple[str, ...] = ()
    starts_at_raw: str = ""
    """``startsAt`` exactly as sent (part of the delivery key)."""

    @property
    def alertname(self) -> str | None:
        return self.labels.get("alertname") or None

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def delivery_key(self) -> str:
        """Group key + fingerprint + startsAt: the same on every retry of this alert's delivery, and
        different for the next time the same alert starts firing."""
        return f"{self.group_key}|{self.fingerprint}|{self.starts_at_raw or self.starts_at}"

    @property
    def incident_key(self) -> str:
        """What an open incident is keyed by, beside the service: the alert's name, or its
        fingerprint when it has no ``alertname`` label."""
        return self.alertname or f"fingerprint:{self.fingerprint}"

    def summary(self) -> str:
        """One line for logs and the incident: the summary/description annotation or the name."""
        for key in ("summary", "description", "message"):
            value = " ".join(self.annotations.get(key, "").split())
            if value:
                return value[:300]
        return self.alertname or self.fingerprint


@dataclass(frozen=True)
class AlertmanagerDelivery:
    """One webhook delivery: the group and its alerts."""

    version: str
    group_key: str
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.firing]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if not a.firing]

    @property
    def without_service(self) -> list[Alert]:
        """Alerts no service label names (they cannot start a run)."""
        return [a for a in self.alerts if a.service is None]


def _status(doc: Mapping[str, Any], where: str) -> Literal["firing", "resolved"]:
    value = fields.one_of(doc, "status", ("firing", "resolved"), where)
    return "firing" if value == "firing" else "resolved"


def _string(doc: Mapping[str, Any], key: str, where: str = "", *, max_len: int = 2048) -> str:
    """A string field that must be present but may be empty (URLs Alertmanager leaves blank)."""
    if key not in doc:
        raise PayloadError(fields.path(where, key), "missing")
    return fields.text(doc, key, where, required=False, max_len=max_len, allow_empty=True) or ""


ENDS_AT_FUTURE = timedelta(days=1)
"""An ``endsAt`` may run ahead of ``startsAt`` by Alertmanager's resolve timeout; a day is plenty."""


def _alert(doc: Any, where: str, group_key: str, mapping: AlertMapping, now: datetime) -> Alert:
    item = fields.mapping(doc, where)
    status = _status(item, where)
    labels = fields.labels(item, "labels", where, required=True)
    if not labels:
        raise PayloadError(fields.path(where, "labels"), "must not be empty")
    annotations = fields.labels(item, "annotations", where)
    starts_raw = fields.text(item, "startsAt", where, max_len=64)
    starts = fields.timestamp(item, "startsAt", where)
    ends = fields.timestamp(item, "endsAt", where, required=False)
    assert starts is not None and starts_raw is not None
    fields.sane_time(starts, fields.path(where, "startsAt"), now)
    ends_at = None if ends is None or ends.year == ZERO_TIME_YEAR else format_time(ends)
    if ends is not None and ends_at is not None:
        fields.sane_time(ends, fields.path(where, "endsAt"), now, future=ENDS_AT_FUTURE)
    if status == "resolved" and ends_at is None:
        raise PayloadError(fields.path(where, "endsAt"), "a resolved alert needs the time it ended")
    fingerprint = fields.text(item, "fingerprint", where, max_len=64)
    assert fingerprint is not None
    if not _FINGERPRINT.match(fingerprint):
        raise PayloadError(fields.path(where, "fingerprint"), "must be hexadecimal (Alertmanager's)")
    service, service_label = mapping.service_of(labels)
    if service is not None and (len(service) > fields.MAX_TEXT or not fields.single_line(service)):
        raise PayloadError(
            fields.path(fields.path(where, "labels"), service_label or "service"),
            f"not usable as a service name (at most {fields.MAX_TEXT} characters on one line)",
        )
    severity, note = mapping.severity_of(labels)
    notes = [note] if note else []
    if service is None:
        notes.append(f"no service label ({', '.join(mapping.service_labels)}): cannot start a run")
    return Alert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=format_time(starts),
        ends_at=ends_at,
        generator_url=_string(item, "generatorURL", where),
        fingerprint=fingerprint.lower(),
        group_key=group_key,
        service=service,
        service_label=service_label,
        severity=severity,
        notes=tuple(notes),
        starts_at_raw=starts_raw,
    )


def parse_alertmanager(
    doc: Any, mapping: AlertMapping = DEFAULT_MAPPING, *, now: datetime | None = None
) -> AlertmanagerDelivery:
    """Check one webhook delivery and map its alerts; :class:`PayloadError` names the field at fault
    (a ``startsAt`` or ``endsAt`` outside the sane range too: :func:`console.payloads.fields.sane_time`)."""
    now = now or datetime.now(UTC)
    top = fields.mapping(doc, "")
    version = top.get("version")
    if version is None:
        raise PayloadError("version", 'missing (Alertmanager sends "4")')
    if version != VERSION:
        shown = version if isinstance(version, str) and len(version) <= 10 else kind_of(version, json=True)
        raise PayloadError("version", f'unsupported payload version {shown!r} (this receiver reads "4")')
    group_key = fields.text(top, "groupKey", max_len=MAX_GROUP_KEY, single_line=False)
    assert group_key is not None
    status = _status(top, "")
    receiver = fields.text(top, "receiver", max_len=fields.MAX_TEXT)
    assert receiver is not None
    truncated = top.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        got = kind_of(truncated, json=True)
        raise PayloadError("truncatedAlerts", f"must be a whole number >= 0, got {got}")
    raw_alerts = top.get("alerts")
    if raw_alerts is None:
        raise PayloadError("alerts", "missing")
    if not isinstance(raw_alerts, list):
        raise PayloadError("alerts", f"must be an array, got {kind_of(raw_alerts, json=True)}")
    if not raw_alerts:
        raise PayloadError("alerts", "empty (a delivery carries at least one alert)")
    if len(raw_alerts) > MAX_ALERTS:
        raise PayloadError("alerts", f"too many alerts ({len(raw_alerts)}; at most {MAX_ALERTS})")
    alerts: dict[str, Alert] = {}
    for i, item in enumerate(raw_alerts):
        alert = _alert(item, fields.path("alerts", i), group_key, mapping, now)
        alerts.setdefault(alert.delivery_key, alert)  # the same alert twice counts once
    return AlertmanagerDelivery(
        version=VERSION,
        group_key=group_key,
        status=status,
        receiver=receiver,
        group_labels=fields.labels(top, "groupLabels"),
        common_labels=fields.labels(top, "commonLabels"),
        common_annotations=fields.labels(top, "commonAnnotations"),
        external_url=_string(top, "externalURL"),
        alerts=tuple(alerts.values()),
        truncated_alerts=truncated,
    )


def starts_at_time(alert: Alert) -> datetime:
    """``startsAt`` as an aware datetime (the moment a snapshot's window is built around)."""
    return datetime.fromisoformat(alert.starts_at.replace("Z", "+00:00"))
