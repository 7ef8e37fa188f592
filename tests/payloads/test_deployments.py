"""Deployment announcements mapped to the loop's deployment: the console's own shape (the demo
deployer's), GitHub's deployment_status event, Argo CD notifications (the documented template and
the whole Application); retries keep their key; what announces nothing is ignored, not refused."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from console.payloads import (
    PayloadError,
    parse_announcement,
    parse_argocd,
    parse_github_deployment_status,
    parse_native,
    verify_github_signature,
)

NOW = datetime(2026, 11, 29, 17, 5, tzinfo=UTC)
SHA = "9f2c5e1d8b7a6c4e3f2a1b0c9d8e7f6a5b4c3d2e"


def demo_deployer_announcement() -> dict:
    """What ``demo_service.deployer --notify-url`` posts (demo_service/README.md)."""
    return {
        "service": "demo-service",
        "version": "v1.2.0",
        "previous_version": "v1.1.0",
        "environment": "live-demo",
        "deployed_by": "alice",
        "deployed_at": "2026-11-29T17:00:00Z",
        "deployment_id": "d-7f3a",
        "source": "demo-deployer",
    }


def github_event(state: str = "success") -> dict:
    """A ``deployment_status`` delivery shaped like GitHub's (fields of the webhook schema;
    unrelated fields trimmed)."""
    user = {"login": "octocat", "id": 1, "type": "User", "site_admin": False}
    bot = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot", "site_admin": False}
    return {
        "action": "created",
        "deployment_status": {
            "url": "https://api.github.com/repos/acme/shop/deployments/1234567/statuses/98765",
            "id": 98765,
            "node_id": "DES_kwDOAbc",
            "state": state,
            "creator": bot,
            "description": "Deployed by the pipeline",
            "environment": "production",
            "target_url": "https://github.com/acme/shop/actions/runs/42",
            "created_at": "2026-11-29T17:01:30Z",
            "updated_at": "2026-11-29T17:01:30Z",
            "deployment_url": "https://api.github.com/repos/acme/shop/deployments/1234567",
            "repository_url": "https://api.github.com/repos/acme/shop",
            "environment_url": "https://shop.example.com",
            "log_url": "https://github.com/acme/shop/actions/runs/42",
        },
        "deployment": {
            "url": "https://api.github.com/repos/acme/shop/deployments/1234567",
            "id": 1234567,
            "node_id": "DE_kwDOAbc",
            "sha": SHA,
            "ref": "v2.4.1",
            "task": "deploy",
            "payload": {},
            "original_environment": "production",
            "environment": "production",
            "description": None,
            "creator": user,
            "created_at": "2026-11-29T16:59:00Z",
            "updated_at": "2026-11-29T17:01:30Z",
            "statuses_url": "https://api.github.com/repos/acme/shop/deployments/1234567/statuses",
            "repository_url": "https://api.github.com/repos/acme/shop",
            "transient_environment": False,
            "production_environment": True,
        },
        "repository": {"id": 3, "name": "shop", "full_name": "acme/shop", "private": True, "owner": user},
        "sender": bot,
    }


def argocd_template_body(**changes) -> dict:
    """What the README's argocd-notifications template renders for a synced application."""
    body = {
        "source": "argocd",
        "app": "checkout",
        "revision": SHA,
        "syncStatus": "Synced",
        "healthStatus": "Progressing",
        "phase": "Succeeded",
        "finishedAt": "2026-11-29T17:02:10Z",
        "initiatedBy": "bob",
        "namespace": "shop-prod",
        "repoURL": "https://github.com/acme/shop-deploy.git",
    }
    body.update(changes)
    return body


def argocd_application() -> dict:
    """``{"app": {{toJson .app}}}``: the Application resource (fields of argoproj.io/v1alpha1)."""
    return {
        "app": {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "checkout", "namespace": "argocd", "labels": {"team": "shop"}},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://github.com/acme/shop-deploy.git",
                    "path": "checkout",
                    "targetRevision": "HEAD",
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop-prod"},
            },
            "status": {
                "sync": {"status": "Synced", "revision": SHA},
                "health": {"status": "Healthy"},
                "history": [
                    {
                        "id": 6,
                        "revision": "1111111111111111111111111111111111111111",
                        "deployedAt": "2026-11-28T10:00:00Z",
                    },
                    {"id": 7, "revision": SHA, "deployedAt": "2026-11-29T17:02:09Z"},
                ],
                "operationState": {
                    "phase": "Succeeded",
                    "startedAt": "2026-11-29T17:02:00Z",
                    "finishedAt": "2026-11-29T17:02:10Z",
                    "operation": {"initiatedBy": {"automated": True}, "sync": {"revision": SHA}},
                },
            },
        }
    }


def test_the_demo_deployers_announcement():
    found = parse_native(demo_deployer_announcement(), now=NOW)
    assert found.accepted and found.source == "deployer" and found.ignored is None
    assert found.deployment == {
        "id": "d-7f3a",
        "service": "demo-service",
        "version": "v1.2.0",
        "previous_version": "v1.1.0",
        "environment": "live-demo",
        "deployed_at": "2026-11-29T17:00:00Z",
        "deployed_by": "alice",
    }
    assert found.delivery_key == "deployment:deployer:d-7f3a"
    assert found.labels == {"announced_by": "demo-deployer"}


def test_a_minimal_native_announcement_and_its_retry_key():
    minimal = parse_native(
        {"service": "shop", "version": "1.4", "deployed_at": "2026-11-29T18:00:00+01:00"}, now=NOW
    )
    assert minimal.source == "api" and minimal.deployment["deployed_at"] == "2026-11-29T17:00:00Z"
    assert minimal.deployment["environment"] is None and minimal.deployment["deployed_by"] is None
    assert minimal.deployment["id"].startswith("dep-")
    again = parse_native(
        {"service": "shop", "version": "1.4", "deployed_at": "2026-11-29T17:00:00Z"}, now=NOW
    )
    assert again.delivery_key == minimal.delivery_key and again.deployment["id"] == minimal.deployment["id"]
    undated = parse_native(
        {"service": "shop", "version": "1.4", "id": "x-1", "labels": {"ticket": "OPS-1"}}, now=NOW
    )
    assert undated.deployment["deployed_at"] == "2026-11-29T17:05:00Z" and undated.deployment["id"] == "x-1"
    assert undated.labels == {"ticket": "OPS-1"}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"service": None}, "service", "missing"),
        ({"service": ""}, "service", "must not be empty"),
        ({"version": 12}, "version", "must be a string"),
        ({"version": "x" * 201}, "version", "too long"),
        ({"deployed_at": "soon"}, "deployed_at", "not an RFC 3339 time"),
        ({"deployed_at": "2026-11-29T18:00:00Z"}, "deployed_at", "is in the future"),
        ({"deployed_by": "a\nb"}, "deployed_by", "control characters"),
        ({"verison": "v2"}, "verison", "unknown field"),
        ({"id": "a"}, "id", "either id or deployment_id"),
        ({"labels": {"a": 1}}, "labels.a", "must be a string"),
        ({"labels": {"a": "x\ny"}}, "labels.a", "one line"),
    ],
)
def test_a_bad_native_announcement_names_the_field(change, field, problem):
    doc = demo_deployer_announcement()
    for key, value in change.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    with pytest.raises(PayloadError) as raised:
        parse_native(doc, now=NOW)
    assert raised.value.field == field and problem in str(raised.value)


def test_githubs_successful_deployment_status():
    found = parse_github_deployment_status(github_event(), now=NOW, delivery_id="72d3162e-cc78-11e3-81ab")
    assert found.source == "github" and found.accepted
    assert found.deployment == {
        "id": "github-1234567",
        "service": "shop",
        "version": "v2.4.1",  # a version-like ref
        "previous_version": None,
        "environment": "production",
        "deployed_at": "2026-11-29T17:01:30Z",
        "deployed_by": "octocat",  # who created the deployment, not the bot that reported it
    }
    assert found.delivery_key == "deployment:github:acme/shop:1234567"
    assert found.labels["sha"] == SHA and found.labels["ref"] == "v2.4.1"
    assert found.labels["environment_url"] == "https://shop.example.com"
    assert found.labels["github_delivery"] == "72d3162e-cc78-11e3-81ab"


def test_github_payload_fields_win_and_a_branch_ref_gives_the_short_sha():
    event = github_event()
    event["deployment"]["ref"] = "main"
    assert parse_github_deployment_status(event, now=NOW).deployment["version"] == SHA[:12]
    event["deployment"]["payload"] = json.dumps(
        {
            "service": "shop-api",
            "version": "2024.11.3",
            "previous_version": "2024.11.2",
            "deployed_by": "carol",
        }
    )  # GitHub allows the payload as a JSON string
    deployment = parse_github_deployment_status(event, now=NOW).deployment
    assert (
        deployment["service"],
        deployment["version"],
        deployment["previous_version"],
        deployment["deployed_by"],
    ) == ("shop-api", "2024.11.3", "2024.11.2", "carol")
    event["deployment"]["creator"] = None
    event["deployment"]["payload"] = ""
    assert parse_github_deployment_status(event, now=NOW).deployment["deployed_by"] == "github-actions[bot]"


@pytest.mark.parametrize("state", ["pending", "in_progress", "queued", "failure", "error", "inactive"])
def test_other_github_states_announce_nothing(state):
    found = parse_github_deployment_status(github_event(state), now=NOW)
    assert not found.accepted and found.deployment is None and f"state '{state}'" in found.ignored


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("deployment_status",), None, "deployment_status"),
        (("deployment_status", "state"), "done", "deployment_status.state"),
        (("deployment", "id"), "42", "deployment.id"),
        (("deployment", "sha"), "abc", "deployment.sha"),
        (("repository",), [], "repository"),
        (("repository", "full_name"), None, "repository.full_name"),
        (("deployment_status", "created_at"), "today", "deployment_status.created_at"),
        (("deployment", "creator"), "octocat", "deployment.creator"),
    ],
)
def test_a_malformed_github_event_names_the_field(path, value, field):
    event = github_event()
    target = event
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    with pytest.raises(PayloadError) as raised:
        parse_github_deployment_status(event, now=NOW)
    assert raised.value.field == field


def test_the_github_signature():
    body = json.dumps(github_event()).encode()
    good = "sha256=" + hmac.new(b"webhook-secret", body, hashlib.sha256).hexdigest()
    assert verify_github_signature(body, good, "webhook-secret")
    assert not verify_github_signature(body + b" ", good, "webhook-secret")
    assert not verify_github_signature(body, good, "other-secret")
    assert not verify_github_signature(body, None, "webhook-secret")
    assert not verify_github_signature(body, good.replace("sha256=", "sha1="), "webhook-secret")
    assert not verify_github_signature(body, good, "")


def test_argocd_from_the_documented_template():
    found = parse_argocd(argocd_template_body(), now=NOW)
    assert found.source == "argocd" and found.accepted
    deployment = found.deployment
    assert deployment["service"] == "checkout" and deployment["version"] == SHA[:12]
    assert deployment["environment"] == "shop-prod" and deployment["deployed_by"] == "bob"
    assert deployment["deployed_at"] == "2026-11-29T17:02:10Z" and deployment["previous_version"] is None
    assert found.labels == {
        "argocd_app": "checkout",
        "revision": SHA,
        "health": "Progressing",
        "repository": "https://github.com/acme/shop-deploy.git",
    }
    assert found.delivery_key == parse_argocd(argocd_template_body(), now=NOW).delivery_key
    chart = parse_argocd(
        argocd_template_body(
            revision="1.8.2", service="checkout-api", previousRevision="1.8.1", environment="prod"
        ),
        now=NOW,
    ).deployment
    assert (chart["service"], chart["version"], chart["previous_version"], chart["environment"]) == (
        "checkout-api",
        "1.8.2",
        "1.8.1",
        "prod",
    )


def test_argocd_template_gaps_render_as_no_value():
    found = parse_argocd(
        argocd_template_body(initiatedBy="<no value>", finishedAt="<no value>", phase=""), now=NOW
    )
    assert found.deployment["deployed_by"] == "argocd"
    assert found.deployment["deployed_at"] == "2026-11-29T17:05:00Z"  # received now
    assert "received" in found.delivery_key


def test_argocd_from_the_whole_application():
    found = parse_argocd(argocd_application(), now=NOW)
    deployment = found.deployment
    assert deployment["service"] == "checkout" and deployment["version"] == SHA[:12]
    assert deployment["previous_version"] == "111111111111"  # the history's entry before this one
    assert deployment["deployed_by"] == "argocd (automated)" and deployment["environment"] == "shop-prod"
    assert deployment["deployed_at"] == "2026-11-29T17:02:10Z"
    assert found.labels["health"] == "Healthy"


@pytest.mark.parametrize(
    ("change", "ignored"),
    [
        ({"syncStatus": "OutOfSync"}, "sync status 'OutOfSync'"),
        ({"phase": "Running"}, "operation phase 'Running'"),
    ],
)
def test_an_argocd_sync_that_did_not_finish_announces_nothing(change, ignored):
    found = parse_argocd(argocd_template_body(**change), now=NOW)
    assert not found.accepted and ignored in found.ignored


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (argocd_template_body(app="<no value>"), "app"),
        (argocd_template_body(revision=None), "revision"),
        (argocd_template_body(finishedAt="later"), "finishedAt"),
        (argocd_template_body(color="red"), "color"),
    ],
)
def test_a_malformed_argocd_body_names_the_field(doc, field):
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(PayloadError) as raised:
        parse_argocd(doc, now=NOW)
    assert raised.value.field == field


def test_a_malformed_application_names_the_path():
    doc = argocd_application()
    doc["app"]["status"]["sync"] = "Synced"
    with pytest.raises(PayloadError) as raised:
        parse_argocd(doc, now=NOW)
    assert raised.value.field == "app.status.sync"


def test_parse_announcement_picks_the_shape():
    assert parse_announcement(demo_deployer_announcement(), now=NOW).source == "deployer"
    assert parse_announcement(github_event(), now=NOW).source == "github"
    assert parse_announcement(github_event(), now=NOW, github_event="deployment_status").accepted
    assert parse_announcement(argocd_template_body(), now=NOW).source == "argocd"
    assert parse_announcement(argocd_application(), now=NOW).source == "argocd"
    ping = parse_announcement(
        {"zen": "Keep it logically awesome.", "hook_id": 1}, now=NOW, github_event="ping"
    )
    assert not ping.accepted and "ping" in ping.ignored
    with pytest.raises(PayloadError):
        parse_announcement(copy.deepcopy([1]), now=NOW)
