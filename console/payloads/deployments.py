"""Deployment announcements: the console's own shape, GitHub's ``deployment_status`` webhook event and
Argo CD notifications, each mapped to the loop's deployment (the Backend protocol's
``launch_deployment``, docs/ARCHITECTURE.md)::

    {"id", "service", "version", "previous_version", "environment", "deployed_at", "deployed_by"}

``deployed_at`` is RFC 3339 UTC with Z; ``environment`` and ``deployed_by`` may be None (the caller
fills them from the services file and the announcing token). Each parser returns an
:class:`Announcement` with a ``delivery_key`` that is the same on every retry of the same
announcement (the idempotency key of ``inbound_deliveries``), or, for a payload that announces
nothing (a GitHub status that is not ``success``, an Argo CD sync still running), ``ignored`` saying
why. A payload of the wrong shape raises :class:`~console.payloads.errors.PayloadError` naming the
field. Everything here is pure: ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from console.domain.models import format_time
from console.domain.names import is_system_name
from console.domain.text import kind_of
from console.domain.vocabulary import CLAIMED_PREFIX, outside_labels
from console.payloads import fields
from console.payloads.errors import PayloadError

NATIVE_KEYS = (
    "service",
    "version",
    "previous_version",
    "environment",
    "deployed_by",
    "deployed_at",
    "deployment_id",
    "id",
    "source",
    "labels",
)
SOURCES = {"deployer": "deployer", "demo-deployer": "deployer"}
"""Native ``source`` values that name the deployer; any other announcement is ``api``."""
GITHUB_STATES = ("error", "failure", "inactive", "pending", "success", "queued", "in_progress")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_VERSION_TAG = re.compile(r"^(?:refs/tags/)?(v?\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.+-]+)?)$")
_NO_VALUE = "<no value>"
"""What a Go template renders for a missing field (Argo CD's notification templates)."""


@dataclass(frozen=True)
class Announcement:
    """A deployment announced by someone; ``deployment`` is None when the payload announces nothing."""

    source: str
    """Who announced it: ``deployer``, ``api``, ``github`` or ``argocd`` (``launch_deployment``'s)."""
    delivery_key: str
    deployment: dict[str, Any] | None = None
    ignored: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    """Extra facts worth keeping on the run (repository, sha, Argo CD application, ...)."""

    @property
    def accepted(self) -> bool:
        return self.deployment is not None


def _deployment(
    *,
    deployment_id: str,
    service: str,
    version: str,
    previous_version: str | None,
    environment: str | None,
    deployed_at: datetime,
    deployed_by: str | None,
) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "service": service,
        "version": version,
        "previous_version": previous_version,
        "environment": environment,
        "deployed_at": format_time(deployed_at),
        "deployed_by": deployed_by,
    }


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _not_future(moment: datetime, at: str, now: datetime) -> None:
    """A deployment's time within the sane range (:func:`console.payloads.fields.sane_time`)."""
    fields.sane_time(moment, at, now)


def _name(doc: Mapping[str, Any], key: str, where: str = "", *, required: bool = False) -> str | None:
    return fields.text(doc, key, where, required=required, max_len=fields.MAX_TEXT)


# -- the console's own shape ----------------------------------------------------------------------


def parse_native(doc: Any, *, now: datetime) -> Announcement:
    """The console's shape (what ``demo_service.deployer --notify-url`` posts)::

        {"service": "demo-service", "version": "v1.2.0", "previous_version": "v1.1.0",
         "environment": "live-demo", "deployed_by": "alice", "deployed_at": "2026-11-29T17:00:00Z",
         "deployment_id": "d-42", "source": "demo-deployer", "labels": {"ticket": "OPS-1"}}

    ``service`` and ``version`` are required; ``id`` is accepted for ``deployment_id``;
    ``deployed_at`` defaults to ``now``. Unknown fields are refused (a typo must not pass
    silently). Retries are recognised by ``deployment_id``, else by service + version +
    ``deployed_at``; without either of those, every delivery is a new announcement."""
    body = fields.mapping(doc, "")
    for key in body:
        if key not in NATIVE_KEYS:
            raise PayloadError(str(key)[:60], f"unknown field (allowed: {', '.join(NATIVE_KEYS)})")
    if "id" in body and "deployment_id" in body:
        raise PayloadError("id", "give either id or deployment_id, not both")
    service = _name(body, "service", required=True)
    version = _name(body, "version", required=True)
    assert service is not None and version is not None
    given_at = fields.timestamp(body, "deployed_at", required=False)
    deployed_at = given_at or now
    _not_future(deployed_at, "deployed_at", now)
    given_id = _name(body, "deployment_id") or _name(body, "id")
    raw_source = fields.text(body, "source", required=False, max_len=64)
    source = SOURCES.get((raw_source or "").lower(), "api")
    stamp = format_time(deployed_at)
    if given_id:
        key = f"deployment:{source}:{given_id}"
    elif given_at is not None:
        key = f"deployment:{source}:{service}|{version}|{stamp}"
    else:
        key = f"deployment:{source}:{service}|{version}|received {stamp}"
    labels = outside_labels(fields.labels(body, "labels"))
    for name, value in labels.items():
        if len(name) > 64 or not fields.single_line(value) or len(value) > fields.MAX_TEXT:
            raise PayloadError(
                f"labels.{name[:60]}",
                f"label names up to 64, values up to {fields.MAX_TEXT} characters on one line",
            )
    if raw_source:
        labels = {**labels, "announced_by": raw_source}
    deployed_by = _name(body, "deployed_by")
    if deployed_by is not None and is_system_name(deployed_by):
        raise PayloadError("deployed_by", "names starting with 'system:' belong to the console itself")
    deployment = _deployment(
        deployment_id=given_id or f"dep-{_digest(source, service, version, stamp)}",
        service=service,
        version=version,
        previous_version=_name(body, "previous_version"),
        environment=_name(body, "environment"),
        deployed_at=deployed_at,
        deployed_by=deployed_by,
    )
    return Announcement(source, key, deployment, labels=labels)


# -- GitHub ---------------------------------------------------------------------------------------


def _login(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    """``doc[key].login`` (a GitHub user object, which may be null)."""
    user = doc.get(key)
    if user is None:
        return None
    user = fields.mapping(user, fields.path(where, key))
    return _name(user, "login", fields.path(where, key))


def _github_payload(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    """``deployment.payload``: an object, or a string (GitHub allows both; a string may hold JSON
    or be empty)."""
    raw = deployment.get("payload")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, Mapping) else {}


def _github_version(payload: Mapping[str, Any], ref: str | None, sha: str) -> str:
    declared = payload.get("version")
    if isinstance(declared, str) and declared.strip() and len(declared.strip()) <= fields.MAX_TEXT:
        return declared.strip()
    match = _VERSION_TAG.match(ref or "")
    if match:
        return match.group(1)
    return sha[:12]


def parse_github_deployment_status(
    doc: Any, *, now: datetime, delivery_id: str | None = None
) -> Announcement:
    """GitHub's ``deployment_status`` webhook event (header ``X-GitHub-Event: deployment_status``;
    https://docs.github.com/en/webhooks/webhook-events-and-payloads#deployment_status; the schema
    ``webhook-deployment-status-created`` of github/rest-api-description)::

        {"action": "created",
         "deployment_status": {"state": "success", "environment": "production",
                               "creator": {"login": "octocat"}, "created_at": "...Z", ...},
         "deployment": {"id": 42, "sha": "<40 hex>", "ref": "v1.2.0", "task": "deploy",
                        "environment": "production", "payload": {...} or "",
                        "creator": {"login": "octocat"}, ...},
         "repository": {"name": "shop", "full_name": "acme/shop", ...}, "sender": {"login": ...}}

    Only ``state: success`` announces a deployment (the others are ``ignored``). Mapped:
    service = ``deployment.payload.service`` or the repository's name; version =
    ``payload.version``, else a version-like ``ref`` (``v1.2.0``, ``refs/tags/1.4``), else the
    short sha; previous_version = ``payload.previous_version``; environment = the status's (else
    the deployment's); deployed_by = ``payload.deployed_by``, else the deployment's creator, else
    the sender; deployed_at = the success status's ``created_at``. One run per GitHub deployment:
    the delivery key is the repository + deployment id. GitHub cannot send a bearer token:
    check ``X-Hub-Signature-256`` with :func:`verify_github_signature`."""
    body = fields.mapping(doc, "")
    action = fields.text(body, "action", max_len=64)
    status = fields.mapping(body.get("deployment_status"), "deployment_status")
    deployment = fields.mapping(body.get("deployment"), "deployment")
    repository = fields.mapping(body.get("repository"), "repository")
    full_name = fields.text(repository, "full_name", "repository")
    repo_name = _name(repository, "name", "repository", required=True)
    dep_id = deployment.get("id")
    if isinstance(dep_id, bool) or not isinstance(dep_id, int) or dep_id < 0:
        raise PayloadError("deployment.id", f"must be a whole number, got {kind_of(dep_id, json=True)}")
    key = f"deployment:github:{full_name}:{dep_id}"
    state = fields.one_of(status, "state", GITHUB_STATES, "deployment_status")
    if action != "created":
        return Announcement("github", key, ignored=f"action {action[:30]!r}: only 'created' announces")
    if state != "success":
        return Announcement(
            "github", key, ignored=f"deployment_status state {state!r}: only 'success' announces a deployment"
        )
    sha = fields.text(deployment, "sha", "deployment", max_len=64)
    assert sha is not None and repo_name is not None
    if not _SHA.match(sha.lower()):
        raise PayloadError("deployment.sha", "must be a 40-digit commit sha")
    ref = fields.text(deployment, "ref", "deployment", required=False, max_len=255)
    payload = _github_payload(deployment)
    created = fields.timestamp(status, "created_at", "deployment_status")
    assert created is not None
    _not_future(created, "deployment_status.created_at", now)
    environment = _name(status, "environment", "deployment_status") or _name(
        deployment, "environment", "deployment"
    )

    def declared(name: str) -> str | None:
        value = payload.get(name)
        if isinstance(value, str) and value.strip() and fields.single_line(value):
            if name == "deployed_by" and is_system_name(value):
                return None  # the console's own names are never a deployer's
            return value.strip()[: fields.MAX_TEXT]
        return None

    deployed_by = (
        declared("deployed_by")
        or _login(deployment, "creator", "deployment")
        or _login(status, "creator", "deployment_status")
        or _login(body, "sender", "")
    )
    labels = {"repository": str(full_name), "sha": sha.lower()}
    if ref:
        labels["ref"] = ref
    for name in ("environment_url", "log_url", "target_url"):
        url = fields.text(status, name, "deployment_status", required=False, max_len=2048)
        if url:
            labels[name] = url
    if delivery_id:
        labels["github_delivery"] = delivery_id[:100]
    return Announcement(
        "github",
        key,
        _deployment(
            deployment_id=f"github-{dep_id}",
            service=declared("service") or repo_name,
            version=_github_version(payload, ref, sha.lower()),
            previous_version=declared("previous_version"),
            environment=environment,
            deployed_at=created,
            deployed_by=deployed_by,
        ),
        labels=labels,
    )


def verify_github_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the webhook
    secret>`` (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries),
    compared in constant time."""
    if not secret or not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


# -- Argo CD --------------------------------------------------------------------------------------

ARGOCD_TEMPLATE = """\
template.console-deployed: |
  webhook:
    console:
      method: POST
      body: |
        {"source": "argocd", "app": "{{.app.metadata.name}}",
         "revision": "{{.app.status.sync.revision}}",
         "syncStatus": "{{.app.status.sync.status}}",
         "healthStatus": "{{.app.status.health.status}}",
         "phase": "{{.app.status.operationState.phase}}",
         "finishedAt": "{{.app.status.operationState.finishedAt}}",
         "initiatedBy": "{{.app.status.operationState.operation.initiatedBy.username}}",
         "namespace": "{{.app.spec.destination.namespace}}",
         "repoURL": "{{.app.spec.source.repoURL}}"}
"""
"""The notification template the README documents (argocd-notifications-cm, with a
``service.webhook.console`` whose ``headers`` carry ``Authorization: Bearer ...``)."""
ARGOCD_FLAT_KEYS = (
    "source",
    "app",
    "revision",
    "syncStatus",
    "healthStatus",
    "phase",
    "finishedAt",
    "initiatedBy",
    "namespace",
    "repoURL",
    "service",
    "version",
    "previousRevision",
    "environment",
)


def _template_text(
    doc: Mapping[str, Any], key: str, where: str = "", *, max_len: int = fields.MAX_TEXT
) -> str | None:
    """A templated string: Go renders a missing field as ``<no value>`` (or nothing): both mean absent."""
    value = fields.text(doc, key, where, required=False, max_len=max_len)
    return None if value in (None, _NO_VALUE) else value


def _argocd_version(revision: str) -> str:
    return revision[:12] if _SHA.match(revision.lower()) else revision


def _child(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return {} if value is None else fields.mapping(value, fields.path(where, key))


def parse_argocd(doc: Any, *, now: datetime) -> Announcement:
    """An Argo CD notification (the ``webhook`` notification service; its body is whatever the
    template renders: https://argo-cd.readthedocs.io/en/stable/operator-manual/notifications/services/webhook/,
    fields of the Application as in the catalog's templates,
    https://argo-cd.readthedocs.io/en/stable/operator-manual/notifications/catalog/). Two bodies
    are read:

    - the flat one of :data:`ARGOCD_TEMPLATE` (``app`` is the application's name), optionally with
      ``service``, ``version``, ``previousRevision``, ``environment`` added by the template;
    - ``{"app": {{toJson .app}}}``: the whole Application (``app.metadata.name``,
      ``app.status.sync.{status,revision}``, ``app.status.operationState.{phase,finishedAt,
      operation.initiatedBy.username}``, ``app.status.history[].{revision,deployedAt}``,
      ``app.spec.destination.namespace``).

    A sync that is not ``Synced`` or an operation that has not ``Succeeded`` announces nothing
    (``ignored``); health is not required (a deployment that degrades at once is exactly what the
    loop must look at). Mapped: service = ``service`` or the application's name; version =
    ``version``, else the revision (a commit sha shortened to 12); previous_version =
    ``previousRevision``, else the history's entry before the current one; environment =
    ``environment``, else the destination namespace; deployed_by = who started the sync
    (``argocd (automated)`` for an automated one; Argo CD's own ``system:...`` names are kept as
    the label ``claimed.initiated_by``, never as a deployer); deployed_at = ``finishedAt``, else the history's
    ``deployedAt``, else ``now``. Retries are recognised by app + revision + finishedAt (keep
    ``finishedAt`` in the template)."""
    body = fields.mapping(doc, "")
    app = body.get("app")
    if isinstance(app, Mapping):
        return _argocd_application(body, app, now)
    for key in body:
        if key not in ARGOCD_FLAT_KEYS:
            raise PayloadError(str(key)[:60], f"unknown field (allowed: {', '.join(ARGOCD_FLAT_KEYS)})")
    name = _template_text(body, "app")
    if name is None:
        raise PayloadError("app", "missing (the application's name, {{.app.metadata.name}})")
    revision = _template_text(body, "revision", max_len=255)
    if revision is None:
        raise PayloadError("revision", "missing ({{.app.status.sync.revision}})")
    finished = None
    if _template_text(body, "finishedAt") is not None:
        finished = fields.timestamp(body, "finishedAt")
    return _argocd_result(
        name=name,
        revision=revision,
        sync_status=_template_text(body, "syncStatus"),
        phase=_template_text(body, "phase"),
        health=_template_text(body, "healthStatus"),
        finished=finished,
        previous=_template_text(body, "previousRevision", max_len=255),
        service=_template_text(body, "service"),
        version=_template_text(body, "version"),
        environment=_template_text(body, "environment") or _template_text(body, "namespace"),
        initiated_by=_template_text(body, "initiatedBy"),
        automated=False,
        repo=_template_text(body, "repoURL", max_len=2048),
        now=now,
    )


def _argocd_application(body: Mapping[str, Any], app: Mapping[str, Any], now: datetime) -> Announcement:
    metadata = _child(app, "metadata", "app")
    name = _name(metadata, "name", "app.metadata", required=True)
    status = _child(app, "status", "app")
    sync = _child(status, "sync", "app.status")
    revision = fields.text(sync, "revision", "app.status.sync", max_len=255)
    operation_state = _child(status, "operationState", "app.status")
    finished = fields.timestamp(operation_state, "finishedAt", "app.status.operationState", required=False)
    operation = _child(operation_state, "operation", "app.status.operationState")
    initiated = _child(operation, "initiatedBy", "app.status.operationState.operation")
    history = status.get("history") or []
    if not isinstance(history, list):
        raise PayloadError("app.status.history", f"must be an array, got {kind_of(history, json=True)}")
    previous = None
    deployed_at = finished
    if history:
        last = fields.mapping(history[-1], f"app.status.history[{len(history) - 1}]")
        if last.get("revision") == revision:
            if deployed_at is None:
                deployed_at = fields.timestamp(
                    last, "deployedAt", f"app.status.history[{len(history) - 1}]", required=False
                )
            if len(history) >= 2:
                before = fields.mapping(history[-2], f"app.status.history[{len(history) - 2}]")
                previous = fields.text(
                    before, "revision", f"app.status.history[{len(history) - 2}]", required=False, max_len=255
                )
    spec = _child(app, "spec", "app")
    destination = _child(spec, "destination", "app.spec")
    source = _child(spec, "source", "app.spec")
    assert name is not None and revision is not None
    return _argocd_result(
        name=name,
        revision=revision,
        sync_status=fields.text(sync, "status", "app.status.sync", required=False, max_len=64),
        phase=fields.text(operation_state, "phase", "app.status.operationState", required=False, max_len=64),
        health=fields.text(
            _child(status, "health", "app.status"), "status", "app.status.health", required=False, max_len=64
        ),
        finished=deployed_at,
        previous=previous,
        service=_name(body, "service"),
        version=_name(body, "version"),
        environment=_name(body, "environment") or _name(destination, "namespace", "app.spec.destination"),
        initiated_by=_name(initiated, "username", "app.status.operationState.operation.initiatedBy"),
        automated=initiated.get("automated") is True,
        repo=fields.text(source, "repoURL", "app.spec.source", required=False, max_len=2048),
        now=now,
    )


def _argocd_result(
    *,
    name: str,
    revision: str,
    sync_status: str | None,
    phase: str | None,
    health: str | None,
    finished: datetime | None,
    previous: str | None,
    service: str | None,
    version: str | None,
    environment: str | None,
    initiated_by: str | None,
    automated: bool,
    repo: str | None,
    now: datetime,
) -> Announcement:
    deployed_at = finished or now
    stamp = format_time(deployed_at)
    key = f"deployment:argocd:{name}:{revision}:{stamp if finished else 'received ' + stamp}"
    if sync_status != "Synced":
        why = f"sync status {str(sync_status)[:30]!r}: only 'Synced' announces"
        return Announcement("argocd", key, ignored=why)
    if phase is not None and phase != "Succeeded":
        why = f"operation phase {phase[:30]!r}: only 'Succeeded' announces"
        return Announcement("argocd", key, ignored=why)
    _not_future(deployed_at, "finishedAt", now)
    labels = {"argocd_app": name, "revision": revision}
    if initiated_by is not None and is_system_name(initiated_by):
        # Argo CD's own names ("system:...") are never a person: kept as a claim, not as the deployer
        labels[CLAIMED_PREFIX + "initiated_by"] = initiated_by
        initiated_by = None
    if health:
        labels["health"] = health
    if repo:
        labels["repository"] = repo
    return Announcement(
        "argocd",
        key,
        _deployment(
            deployment_id=f"argocd-{_digest(name, revision, stamp)}",
            service=service or name,
            version=version or _argocd_version(revision),
            previous_version=_argocd_version(previous) if previous else None,
            environment=environment,
            deployed_at=deployed_at,
            deployed_by=initiated_by or ("argocd (automated)" if automated else "argocd"),
        ),
        labels=labels,
    )


# -- any of them ----------------------------------------------------------------------------------


def parse_announcement(
    doc: Any, *, now: datetime, github_event: str | None = None, delivery_id: str | None = None
) -> Announcement:
    """Whichever shape ``doc`` has: GitHub's (``X-GitHub-Event`` given, or the event's
    ``deployment_status`` + ``deployment`` keys), Argo CD's (``app``, or ``"source": "argocd"``),
    else the console's own. Another GitHub event (``ping`` when a webhook is created) is ``ignored``."""
    body = fields.mapping(doc, "")
    if github_event is not None and github_event != "deployment_status":
        return Announcement(
            "github",
            f"github-event:{github_event[:40]}:{delivery_id or ''}",
            ignored=f"GitHub event {github_event[:40]!r}: only deployment_status announces a deployment",
        )
    if github_event == "deployment_status" or ("deployment_status" in body and "deployment" in body):
        return parse_github_deployment_status(body, now=now, delivery_id=delivery_id)
    if "app" in body or body.get("source") == "argocd":
        return parse_argocd(body, now=now)
    return parse_native(body, now=now)
