"""Alertmanager's webhook (v4): every field checked with one error naming it, firing vs resolved, the
delivery key, truncated alerts, and the label mapping (service, severity) from the settings."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from console.domain.models import Severity
from console.payloads import AlertMapping, AlertMappingError, PayloadError, parse_alertmanager
from console.payloads.alertmanager import MAX_ALERTS, starts_at_time
from tests.payloads.payloads import alertmanager_payload


def test_a_firing_delivery_is_read_and_mapped():
    delivery = parse_alertmanager(alertmanager_payload())
    assert (delivery.version, delivery.status, delivery.receiver) == ("4", "firing", "console")
    assert delivery.group_key == '{}/{severity=~"critical|warning"}:{alertname="HighErrorRate"}'
    assert delivery.external_url == "http://127.0.0.1:9093" and delivery.truncated_alerts == 0
    assert delivery.common_labels == {"severity": "critical"}
    errors, latency = delivery.alerts
    assert errors.firing and errors.status == "firing" and errors.ends_at is None
    assert errors.starts_at == "2026-11-29T17:00:05.123456Z"  # nanoseconds kept to microseconds
    assert starts_at_time(errors).microsecond == 123456
    assert (errors.service, errors.service_label, errors.severity) == (
        "demo-service",
        "service",
        Severity.CRITICAL,
    )
    assert errors.alertname == "HighErrorRate" and errors.incident_key == "HighErrorRate"
    assert errors.summary() == "demo-service fails 34% of requests"
    assert errors.notes == ()
    assert errors.delivery_key == (
        '{}/{severity=~"critical|warning"}:{alertname="HighErrorRate"}|c7a0b1f3e2d4a5b6|2026-11-29T17:00:05.123456789Z'
    )
    # no service label: job is the next in the mapping; warning -> MEDIUM
    assert (latency.service, latency.service_label, latency.severity) == ("checkout", "job", Severity.MEDIUM)
    assert latency.generator_url == "" and latency.annotations == {}
    assert delivery.firing == [errors, latency] and delivery.resolved == [] and delivery.without_service == []


def test_a_resolved_delivery_carries_when_each_alert_ended():
    doc = alertmanager_payload(status="resolved")
    for alert in doc["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-29T17:04:00.5+01:00"
    delivery = parse_alertmanager(doc)
    assert delivery.status == "resolved" and len(delivery.resolved) == 2 and delivery.firing == []
    assert delivery.alerts[0].ends_at == "2026-11-29T16:04:00.500000Z"
    # the same alert resolved keeps its delivery key's parts: the group, the fingerprint, startsAt
    assert (
        delivery.alerts[0].delivery_key == parse_alertmanager(alertmanager_payload()).alerts[0].delivery_key
    )


def test_a_retry_has_the_same_keys_and_a_new_start_a_new_one():
    first = parse_alertmanager(alertmanager_payload())
    again = parse_alertmanager(alertmanager_payload())
    assert [a.delivery_key for a in first.alerts] == [a.delivery_key for a in again.alerts]
    doc = alertmanager_payload()
    doc["alerts"][0]["startsAt"] = "2026-11-29T18:00:00Z"  # it fired again later
    assert parse_alertmanager(doc).alerts[0].delivery_key != first.alerts[0].delivery_key


def test_truncated_alerts_are_counted_not_refused():
    assert parse_alertmanager(alertmanager_payload(truncatedAlerts=7)).truncated_alerts == 7
    assert (
        parse_alertmanager(
            {k: v for k, v in alertmanager_payload().items() if k != "truncatedAlerts"}
        ).truncated_alerts
        == 0
    )


def test_fields_a_later_alertmanager_adds_are_ignored_and_the_same_alert_twice_counts_once():
    doc = alertmanager_payload(newField={"x": 1})
    doc["alerts"].append(copy.deepcopy(doc["alerts"][0]))
    assert len(parse_alertmanager(doc).alerts) == 2


def without(path: tuple, doc=None):
    doc = doc or alertmanager_payload()
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


def setting(path: tuple, value):
    doc = alertmanager_payload()
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "field", "problem"),
    [
        ([1, 2], "(body)", "must be a JSON object"),
        (without(("version",)), "version", "missing"),
        (setting(("version",), "3"), "version", "unsupported payload version '3'"),
        (setting(("version",), 4), "version", "unsupported payload version 'a number'"),
        (without(("groupKey",)), "groupKey", "missing"),
        (setting(("groupKey",), ""), "groupKey", "must not be empty"),
        (without(("status",)), "status", "missing"),
        (setting(("status",), "pending"), "status", "must be one of firing, resolved"),
        (without(("receiver",)), "receiver", "missing"),
        (setting(("truncatedAlerts",), -1), "truncatedAlerts", "whole number >= 0"),
        (setting(("truncatedAlerts",), "2"), "truncatedAlerts", "whole number >= 0"),
        (without(("alerts",)), "alerts", "missing"),
        (setting(("alerts",), {}), "alerts", "must be an array"),
        (setting(("alerts",), []), "alerts", "empty"),
        (setting(("groupLabels",), ["a"]), "groupLabels", "must be an object of strings"),
        (setting(("commonLabels", "x"), 1), "commonLabels.x", "must be a string"),
        (setting(("commonAnnotations",), "x"), "commonAnnotations", "must be an object"),
        (without(("externalURL",)), "externalURL", "missing"),
        (setting(("alerts", 1), "alert"), "alerts[1]", "must be a JSON object"),
        (without(("alerts", 0, "status")), "alerts[0].status", "missing"),
        (setting(("alerts", 0, "status"), "silenced"), "alerts[0].status", "must be one of"),
        (without(("alerts", 0, "labels")), "alerts[0].labels", "missing"),
        (setting(("alerts", 0, "labels"), {}), "alerts[0].labels", "must not be empty"),
        (setting(("alerts", 0, "labels", "severity"), 2), "alerts[0].labels.severity", "must be a string"),
        (setting(("alerts", 1, "annotations"), []), "alerts[1].annotations", "must be an object"),
        (without(("alerts", 0, "startsAt")), "alerts[0].startsAt", "missing"),
        (setting(("alerts", 0, "startsAt"), "yesterday"), "alerts[0].startsAt", "not an RFC 3339 time"),
        (setting(("alerts", 0, "startsAt"), "2026-11-29 17:00:00"), "alerts[0].startsAt", "RFC 3339"),
        (
            setting(("alerts", 0, "startsAt"), "2026-13-29T17:00:00Z"),
            "alerts[0].startsAt",
            "not a valid date",
        ),
        (setting(("alerts", 1, "endsAt"), 5), "alerts[1].endsAt", "must be a string"),
        (without(("alerts", 1, "generatorURL")), "alerts[1].generatorURL", "missing"),
        (without(("alerts", 0, "fingerprint")), "alerts[0].fingerprint", "missing"),
        (setting(("alerts", 0, "fingerprint"), "not-hex!"), "alerts[0].fingerprint", "hexadecimal"),
        (setting(("alerts", 0, "labels", "service"), "two\nlines"), "alerts[0].labels.service", "one line"),
    ],
)
def test_each_malformed_field_is_named(doc, field, problem):
    with pytest.raises(PayloadError) as raised:
        parse_alertmanager(doc)
    assert raised.value.field == field
    assert problem in str(raised.value) and str(raised.value).startswith(field)


def test_a_resolved_alert_without_an_end_is_refused():
    doc = alertmanager_payload()
    doc["alerts"][0]["status"] = "resolved"
    with pytest.raises(PayloadError, match=r"^alerts\[0\]\.endsAt: a resolved alert needs"):
        parse_alertmanager(doc)


def test_too_many_alerts_and_overlong_values_are_refused():
    doc = alertmanager_payload()
    doc["alerts"] = doc["alerts"][:1] * (MAX_ALERTS + 1)
    with pytest.raises(PayloadError, match="too many alerts"):
        parse_alertmanager(doc)
    with pytest.raises(PayloadError, match=r"alerts\[0\]\.labels\.x: too long"):
        parse_alertmanager(setting(("alerts", 0, "labels", "x"), "v" * 5000))


def test_an_error_never_echoes_the_value():
    with pytest.raises(PayloadError) as raised:
        parse_alertmanager(setting(("alerts", 0, "startsAt"), "<script>alert(1)</script>"))
    assert "script" not in str(raised.value)


def test_alerts_without_a_service_label_or_a_known_severity_get_notes():
    doc = alertmanager_payload()
    doc["alerts"][1]["labels"] = {"alertname": "DiskFull", "severity": "sev2"}
    doc["alerts"][0]["labels"].pop("severity")
    first, second = parse_alertmanager(doc).alerts
    assert first.severity == Severity.MEDIUM and first.notes == ("no severity label: MEDIUM (the default)",)
    assert second.service is None and second.severity == Severity.MEDIUM
    assert "severity='sev2' is not in the mapping" in second.notes[0]
    assert "no service label (service, job, app)" in second.notes[1]
    assert parse_alertmanager(doc).without_service == [second]


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        ("critical", "CRITICAL"),
        ("CRITICAL", "CRITICAL"),
        ("page", "HIGH"),
        ("error", "HIGH"),
        ("warning", "MEDIUM"),
        ("Warn", "MEDIUM"),
        ("info", "LOW"),
        ("none", "LOW"),
        ("high", "HIGH"),
    ],
)
def test_the_default_severity_mapping(value, severity):
    assert AlertMapping().severity_of({"severity": value})[0] == Severity(severity)


def test_the_mapping_comes_from_the_settings(settings):
    mapping = AlertMapping.from_settings(
        replace(
            settings,
            alert_service_labels="app, kubernetes_name",
            alert_severity_label="priority",
            alert_severity_map="P1=CRITICAL, p2=high,page=critical",
            alert_default_severity="low",
        )
    )
    assert mapping.service_labels == ("app", "kubernetes_name")
    labels = {"alertname": "X", "service": "ignored", "kubernetes_name": "shop", "priority": "p1"}
    assert mapping.service_of(labels) == ("shop", "kubernetes_name")
    assert mapping.severity_of(labels) == (Severity.CRITICAL, None)
    assert mapping.severity_of({"priority": "page"})[0] == Severity.CRITICAL
    assert mapping.severity_of({})[0] == Severity.LOW
    doc = alertmanager_payload()
    doc["alerts"][0]["labels"] = {"alertname": "X", "app": "shop", "priority": "p2"}
    alert = parse_alertmanager(doc, mapping).alerts[0]
    assert (alert.service, alert.severity) == ("shop", Severity.HIGH)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"alert_service_labels": " , "}, "CONSOLE_ALERT_SERVICE_LABELS"),
        ({"alert_service_labels": "service,bad-label"}, "CONSOLE_ALERT_SERVICE_LABELS"),
        ({"alert_severity_label": "a b"}, "CONSOLE_ALERT_SEVERITY_LABEL"),
        ({"alert_severity_map": "sev1"}, "CONSOLE_ALERT_SEVERITY_MAP"),
        ({"alert_severity_map": "sev1=URGENT"}, "CONSOLE_ALERT_SEVERITY_MAP"),
        ({"alert_default_severity": "meh"}, "CONSOLE_ALERT_DEFAULT_SEVERITY"),
    ],
)
def test_a_bad_mapping_setting_is_named(settings, change, named):
    with pytest.raises(AlertMappingError, match=named):
        AlertMapping.from_settings(replace(settings, **change))
