"""What arrives from outside, checked and mapped, with no I/O: Alertmanager's webhook (v4) and
deployment announcements (the console's own shape, GitHub's ``deployment_status``, Argo CD
notifications). The HTTP API (console/api) and the loop's steps use the same parsers.

Imports only ``console.domain`` and ``console.settings`` (its layer in the import-linter contract).
"""

from console.payloads.alertmanager import (
    DEFAULT_MAPPING,
    DEFAULT_SEVERITY_MAP,
    Alert,
    AlertmanagerDelivery,
    AlertMapping,
    parse_alertmanager,
)
from console.payloads.deployments import (
    Announcement,
    parse_announcement,
    parse_argocd,
    parse_github_deployment_status,
    parse_native,
    verify_github_signature,
)
from console.payloads.errors import AlertMappingError, PayloadError

__all__ = [
    "DEFAULT_MAPPING",
    "DEFAULT_SEVERITY_MAP",
    "Alert",
    "AlertMapping",
    "AlertMappingError",
    "AlertmanagerDelivery",
    "Announcement",
    "PayloadError",
    "parse_alertmanager",
    "parse_announcement",
    "parse_argocd",
    "parse_github_deployment_status",
    "parse_native",
    "verify_github_signature",
]
