"""Payloads shaped like the real senders', shared by the API tests."""

from __future__ import annotations

from typing import Any


def alertmanager_payload(**overrides: Any) -> dict[str, Any]:
    """A delivery as Alertmanager 0.25 sends it (webhook payload version 4): two alerts of one group."""
    doc: dict[str, Any] = {
        "receiver": "console",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighErrorRate",
                    "service": "demo-service",
                    "severity": "critical",
                    "instance": "127.0.0.1:8701",
                    "job": "demo",
                },
                "annotations": {
                    "summary": "demo-service fails 34% of requests",
                    "description": "error_rate above 20% for 0s",
                },
                "startsAt": "2026-11-29T17:00:05.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=service%3Ahttp_requests_errors%3Aratio_rate5s+%3E+0.2&g0.tab=1",
                "fingerprint": "c7a0b1f3e2d4a5b6",
            },
            {
                "status": "firing",
                "labels": {"alertname": "HighLatency", "job": "checkout", "severity": "warning"},
                "annotations": {},
                "startsAt": "2026-11-29T17:00:06Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": "0a1b2c3d4e5f6071",
            },
        ],
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": '{}/{severity=~"critical|warning"}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
    }
    doc.update(overrides)
    return doc
