"""What arrives from outside, acted on: deployment announcements start the loop, Alertmanager's
alerts open incidents and start the incident path, each once (:mod:`console.inbound.service`).

Beside :mod:`console.access` in the layers: it uses the engines, the store, the payload parsers
and the telemetry configuration; the HTTP API and the pages call it through the composition root.
It is not part of :mod:`console.payloads` on purpose: the parsers sit below the loop (the incident
step, :mod:`console.loop.incidents`, parses Alertmanager's body with them on Kestra's webhook path),
while this service starts runs through the engines, which sit above the loop; one package cannot be
both (lint-imports: ``payloads -> engines -> loop -> payloads``).
"""

from console.inbound.service import (
    ALERT,
    ALERT_RESOLVED,
    ATTACHED,
    DEFERRED,
    DEPLOYMENT,
    DUPLICATE,
    IGNORED,
    LAUNCHED,
    RESOLVED,
    Inbound,
    InboundError,
    LocalLauncher,
    NotConfigured,
    Outcome,
    OverBudget,
    Refused,
    Unavailable,
)

__all__ = [
    "ALERT",
    "ALERT_RESOLVED",
    "ATTACHED",
    "DEFERRED",
    "DEPLOYMENT",
    "DUPLICATE",
    "IGNORED",
    "LAUNCHED",
    "RESOLVED",
    "Inbound",
    "InboundError",
    "LocalLauncher",
    "NotConfigured",
    "Outcome",
    "OverBudget",
    "Refused",
    "Unavailable",
]
