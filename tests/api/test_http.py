"""The API in-process (Starlette's TestClient, the same app server.py mounts) on the real embedded
engine and approval service: health, tokens (off, broken, missing, wrong), rate limits, bounded and
checked bodies, every decision rule of the Approvals page, the execution view, JSON everywhere,
a busy store, and the token never logged."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace

import pytest

from console.access.approvals import ApprovalService
from console.access.tokens import hash_token
from console.api.guard import Guard
from console.domain.executions import State
from console.engines.backend import BackendUnavailable
from console.runtime import Services, embedded_runtime
from console.settings import Secret
from console.storage import database, migrations
from tests.api.conftest import AUTH, TOKEN, services_of
from tests.conftest import HEALTHY_SCENARIO, run_paused

JSON_TYPE = "application/json"


def decide(client, approval_id, headers=AUTH, **body):
    return client.post(f"/api/approvals/{approval_id}/decision", json=body, headers=headers)


def assert_json_error(response, status, *fragments):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert set(body) >= {"error"}
    for fragment in fragments:
        assert fragment in body["error"], body
    return body


# -- health ----------------------------------------------------------------------------------------


def test_health_needs_no_token_and_reports_every_part(client):
    response = client.get("/api/health")
    assert response.status_code == 200 and response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert body["status"] == "up" and body["engine"] == "embedded"
    checks = body["checks"]
    assert checks["store"] == {"status": "up", "reason": f"SQLite, schema version {migrations.LATEST}"}
    assert checks["engine"]["status"] == "up" and "embedded engine" in checks["engine"]["reason"]
    for part in ("kestra", "prometheus", "llm"):
        assert checks[part]["status"] == "not configured", part
    assert checks["api"] == {"status": "up", "reason": "1 token(s) configured"}


def test_health_is_503_when_the_store_or_the_engine_is_down(settings, make_client):
    broken = Services(settings, None, None, None, error="Store unavailable: disk I/O error")
    response = make_client(broken).get("/api/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["store"] == {"status": "down", "reason": "Store unavailable: disk I/O error"}
    assert checks["engine"]["status"] == "down" and response.json()["status"] == "down"
    assert checks["api"]["status"] == "not configured"


def test_health_probes_prometheus_and_the_llm_when_configured(
    api_settings, runtime, make_client, tmp_path, local_server
):
    ready = {"code": 200}
    prometheus = local_server(
        lambda request, method, body: (ready["code"], {}, b"Prometheus Server is Ready.\n")
    )
    llm = local_server(
        lambda request, method, body: (
            (401, {}, b"{}")
            if request.headers.get("Authorization") != "Bearer llm-key"
            else (200, {"Content-Type": "application/json"}, b'{"data": []}')
        )
    )
    services_file = tmp_path / "services.yaml"
    services_file.write_text(
        "services:\n  demo-service:\n"
        f"    prometheus: {{url: {prometheus.url}, token_env: PROM_HEALTH_TOKEN}}\n"
    )
    settings = replace(
        api_settings, services_file=services_file, together_api_key=Secret("llm-key"), llm_base_url=llm.url
    )
    client = make_client(services_of(runtime, settings))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROM_HEALTH_TOKEN", "prom-secret")
        checks = client.get("/api/health").json()["checks"]
        assert checks["prometheus"] == {"status": "up", "reason": "1 server(s) ready"}
        assert checks["llm"]["status"] == "up"
        assert prometheus.requests_seen[-1][1] == "/-/ready"
        assert prometheus.requests_seen[-1][2]["Authorization"] == "Bearer prom-secret"
        assert llm.requests_seen[-1][1] == "/v1/models"
        ready["code"] = 503
        response = client.get("/api/health")
        checks = response.json()["checks"]
        assert response.status_code == 200  # Prometheus down does not stop the console serving
        assert checks["prometheus"] == {
            "status": "down",
            "reason": "1 of 1 down: demo-service: not ready (HTTP 503)",
        }
        assert prometheus.url not in response.text  # reasons name services, never URLs
    checks = client.get("/api/health").json()["checks"]  # the token's variable is gone
    assert "PROM_HEALTH_TOKEN is not set" in checks["prometheus"]["reason"]
    wrong = make_client(services_of(runtime, replace(settings, together_api_key=Secret("wrong"))))
    assert "refused (HTTP 401)" in wrong.get("/api/health").json()["checks"]["llm"]["reason"]
    services_file.write_text("services: [oops]\n")
    assert "services file:" in client.get("/api/health").json()["checks"]["prometheus"]["reason"]


def test_health_is_cached_between_refreshes_and_the_llm_longer(
    runtime, api_settings, make_client, monkeypatch
):
    from console.api import health

    calls, llm_calls = [], []
    engine = runtime.engine
    real = engine.health
    monkeypatch.setattr(engine, "health", lambda: calls.append(1) or real())
    monkeypatch.setattr(
        health, "check_llm", lambda services, timeout: llm_calls.append(1) or health.Check("up", "x")
    )
    clock = [0.0]
    checker = health.HealthChecker(cache_s=5, llm_cache_s=60, clock=lambda: clock[0])
    client = make_client(services_of(runtime), health=checker)
    for _ in range(5):
        assert client.get("/api/health").status_code == 200
    assert len(calls) == 1 and len(llm_calls) == 1
    clock[0] = 6.0
    client.get("/api/health")
    assert len(calls) == 2 and len(llm_calls) == 1  # the store and engine again, the LLM not yet
    clock[0] = 61.0
    client.get("/api/health")
    assert len(calls) == 3 and len(llm_calls) == 2


# -- tokens -----------------------------------------------------------------------------------------


def test_with_no_token_configured_the_api_is_off_but_says_how_to_turn_it_on(settings, make_client):
    rt = embedded_runtime(settings, max_workers=1)
    try:
        client = make_client(services_of(rt))
        for response in (
            client.get("/api/approvals", headers=AUTH),
            decide(client, "ap-000000000000", decision="approve"),
            client.get("/api/executions/abc"),
        ):
            body = assert_json_error(
                response, 403, "the HTTP API is off", "CONSOLE_API_TOKEN", "reads and writes"
            )
            assert "python -m console.access.tokens hash" in body["error"]
        assert client.get("/api/health").status_code == 200
    finally:
        rt.close()


def test_a_broken_token_configuration_refuses_everyone_without_saying_why(runtime, api_settings, make_client):
    settings = replace(api_settings, api={"tokens": {"bot": {"sha256": "short", "role": "admin"}}})
    client = make_client(services_of(runtime, settings))
    body = assert_json_error(
        client.get("/api/approvals", headers=AUTH), 503, "token configuration cannot be used"
    )
    assert "bot" not in body["error"] and "sha256" not in body["error"]
    assert client.get("/api/health").json()["checks"]["api"]["status"] == "down"


def test_missing_malformed_and_wrong_tokens_are_401_with_a_bearer_challenge(client):
    missing = client.get("/api/approvals")
    assert_json_error(missing, 401, "Authorization: Bearer")
    assert missing.headers["www-authenticate"] == 'Bearer realm="devops-loop-console"'
    basic = client.get("/api/approvals", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_json_error(basic, 401, "must be: Bearer")
    assert 'error="invalid_request"' in basic.headers["www-authenticate"]
    wrong = client.get("/api/approvals", headers={"Authorization": f"Bearer {TOKEN}x"})
    body = assert_json_error(wrong, 401, "invalid token")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert TOKEN not in wrong.text and body == {"error": "invalid token"}
    assert client.get("/api/approvals", headers={"Authorization": f"bearer  {TOKEN} "}).status_code == 200


def test_guessing_tokens_is_slowed_down_per_address(runtime, make_client):
    client = make_client(services_of(runtime), guard=Guard(failures_per_minute=1, failure_burst=3))
    for _ in range(3):
        assert client.get("/api/approvals", headers={"Authorization": "Bearer guess"}).status_code == 401
    limited = client.get("/api/approvals", headers={"Authorization": "Bearer guess"})
    assert_json_error(limited, 429, "too many failed authentications")
    assert int(limited.headers["retry-after"]) >= 1
    assert client.get("/api/approvals", headers=AUTH).status_code == 200  # a valid token still gets in


def test_each_token_has_its_own_rate_limit(runtime, api_settings, make_client):
    other = "second-token-abcdefghijkl"
    settings = replace(
        api_settings,
        api_rate_per_minute=1.0,
        api_burst=3,
        api={"tokens": {"ops": {"sha256": hash_token(other), "identity": "ops", "burst": 10}}},
    )
    client = make_client(services_of(runtime, settings))
    assert [client.get("/api/approvals", headers=AUTH).status_code for _ in range(3)] == [200] * 3
    limited = client.get("/api/approvals", headers=AUTH)
    assert_json_error(limited, 429, "rate limit of token env")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert [
        client.get("/api/approvals", headers={"Authorization": f"Bearer {other}"}).status_code
        for _ in range(10)
    ] == [200] * 10


# -- bodies -----------------------------------------------------------------------------------------


def post_raw(client, content, content_type=JSON_TYPE, headers=None):
    return client.post(
        "/api/approvals/ap-000000000000/decision",
        content=content,
        headers={**AUTH, "Content-Type": content_type, **(headers or {})},
    )


def test_a_body_too_large_is_413_announced_or_streamed(runtime, api_settings, make_client):
    client = make_client(services_of(runtime, replace(api_settings, api_max_body_bytes=2048)))
    big = b'{"decision": "approve", "comment": "' + b"x" * 4000 + b'"}'
    assert_json_error(post_raw(client, big), 413, "body too large (4038 bytes; at most 2048)")

    def chunks():
        for _ in range(10):
            yield b" " * 1000

    assert_json_error(post_raw(client, chunks()), 413, "more than 2048 bytes")


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b'{"decision": "approve"}', "text/plain", 415, "Content-Type: application/json"),
        (b'{"decision": "approve"}', "application/x-www-form-urlencoded", 415, "as JSON"),
        (b"", JSON_TYPE, 400, "body: empty"),
        (b"{'decision': 'approve'}", JSON_TYPE, 400, "body: not valid JSON"),
        (b"\xff\xfe", JSON_TYPE, 400, "body: not UTF-8"),
        (b'{"decision": "approve", "decision": "reject"}', JSON_TYPE, 400, "decision: given twice"),
        (b'{"decision": "approve", "comment": NaN}', JSON_TYPE, 400, "NaN is not JSON"),
        (b"[" * 100 + b"]" * 100, JSON_TYPE, 400, "nested deeper than 64"),
        (b'["approve"]', JSON_TYPE, 400, "body: must be a JSON object"),
        (b'{"decision": "approve", "comments": "typo"}', JSON_TYPE, 400, "comments: unknown field"),
        (b'{"comment": "x"}', JSON_TYPE, 400, "decision: missing"),
        (b'{"decision": "yes"}', JSON_TYPE, 400, 'decision: must be "approve" or "reject"'),
        (b'{"decision": true}', JSON_TYPE, 400, "decision: must be"),
        (b'{"decision": "approve", "comment": 5}', JSON_TYPE, 400, "comment: must be a string"),
        (b'{"decision": "reject"}', JSON_TYPE, 400, "comment: a rejection needs a comment"),
        (b'{"decision": "reject", "comment": "   "}', JSON_TYPE, 400, "comment: a rejection needs a comment"),
        (b'{"decision": "approve", "actor": ["bob"]}', JSON_TYPE, 400, "actor: must be a string"),
        (b'{"decision": "approve", "comment": "' + b"c" * 2001 + b'"}', JSON_TYPE, 400, "comment: too long"),
    ],
)
def test_a_bad_body_is_400_naming_the_field(client, content, content_type, status, fragment):
    assert_json_error(post_raw(client, content, content_type), status, fragment)


def test_untrusted_text_is_only_ever_json_escaped(client, runtime):
    response = post_raw(client, b'{"decision": "approve", "<img src=x onerror=alert(1)>": 1}')
    assert response.status_code == 400
    assert b"<img" not in response.content and b"\\u003cimg src=x" in response.content
    assert response.json()["error"].startswith("<img src=x onerror=alert(1)>: unknown field")
    _, approval = run_paused(runtime.engine)
    with runtime.store.db.write() as conn:
        conn.execute(
            "UPDATE approvals SET actions = ? WHERE id = ?",
            (
                '[{"name": "rollback", "risk": "HIGH", "reason": "</script><script>alert(1)</script>"}]',
                approval["id"],
            ),
        )
    listed = client.get("/api/approvals", headers=AUTH)
    assert b"<script>" not in listed.content and b"\\u003c/script\\u003e" in listed.content
    assert listed.json()["approvals"][0]["actions"][0]["reason"] == "</script><script>alert(1)</script>"
    assert listed.headers["content-security-policy"].startswith("default-src 'none'")


# -- approvals --------------------------------------------------------------------------------------


def test_list_and_approve_through_the_api_then_the_run_finishes(client, runtime):
    execution, approval = run_paused(runtime.engine)
    listed = client.get("/api/approvals", headers=AUTH).json()
    assert listed["status"] == "pending" and listed["count"] == 1
    item = listed["approvals"][0]
    assert item["id"] == approval["id"] and item["execution_id"] == execution.id
    assert item["decision"]["verdict"] == "ROLLBACK" and item["actions"][0]["name"] == "rollback_deployment"
    assert item["links"]["execution"] == f"/api/executions/{execution.id}"

    response = decide(client, approval["id"], decision="approve", comment="leak confirmed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["actor"], body["role"], body["resumed"]) == (
        "approved",
        "api",
        "approver",
        True,
    )
    assert (
        body["approval"]["status"] == "approved"
        and body["approval"]["votes"][0]["comment"] == "leak confirmed"
    )
    assert runtime.engine.wait(execution.id, timeout=30).state == State.SUCCESS
    trail = runtime.store.audit.trail(subject=approval["id"])
    assert ("api", "approval.approved") in [(row["actor"], row["event"]) for row in trail]

    again = decide(client, approval["id"], decision="approve")
    body = assert_json_error(again, 409, "already approved by api")
    assert body["approval"]["decided_by"] == "api" and body["approval"]["decided_at"]
    assert client.get("/api/approvals", headers=AUTH).json()["count"] == 0
    decided = client.get("/api/approvals?status=decided&limit=5", headers=AUTH).json()
    assert [a["id"] for a in decided["approvals"]] == [approval["id"]]
    assert client.get("/api/approvals?status=approved", headers=AUTH).json()["count"] == 1


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("status=open", "status: must be one of pending"),
        ("limit=0", "limit: must be"),
        ("limit=x", "limit: must be"),
        ("stat=pending", "stat: unknown query parameter"),
        ("status=pending&status=all", "status: given more than once"),
    ],
)
def test_bad_query_parameters_are_named(client, query, fragment):
    assert_json_error(client.get(f"/api/approvals?{query}", headers=AUTH), 400, fragment)


def test_reject_with_a_comment_escalates(client, runtime):
    execution, approval = run_paused(runtime.engine)
    response = decide(client, approval["id"], decision="reject", comment="dependency, not us")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    done = runtime.engine.wait(execution.id, timeout=30)
    assert done.state == State.SUCCESS
    assert runtime.store.deployments.for_execution(execution.id)["status"] == "escalated"


def test_unknown_approvals_are_404(client):
    assert_json_error(
        decide(client, "ap-ffffffffffff", decision="approve"), 404, "approval ap-ffffffffffff not found"
    )
    bad_id = decide(client, "%3Cscript%3E", decision="approve")
    assert_json_error(bad_id, 404, "approval not found")
    assert b"script" not in bad_id.content


def test_a_viewer_token_reads_but_cannot_decide_and_the_refusal_is_audited(
    runtime, api_settings, make_client
):
    client = make_client(
        services_of(runtime, replace(api_settings, api_role="viewer", api_identity="dashboards"))
    )
    _, approval = run_paused(runtime.engine)
    assert client.get("/api/approvals", headers=AUTH).status_code == 200
    assert_json_error(
        decide(client, approval["id"], decision="approve"), 403, "dashboards has the viewer role"
    )
    assert runtime.store.approvals.get(approval["id"])["status"] == "pending"
    assert ("dashboards", "approval.refused") in [
        (row["actor"], row["event"]) for row in runtime.store.audit.trail(subject=approval["id"])
    ]


def test_nobody_approves_their_own_request_through_the_api_either(runtime, api_settings, make_client):
    _, approval = run_paused(runtime.engine)
    requester = approval["requested_by"]
    client = make_client(services_of(runtime, replace(api_settings, api_identity=requester.upper())))
    assert_json_error(decide(client, approval["id"], decision="approve"), 403, "your own request")


BOT = "chatops-bot-token-0123456789"


def bot_settings(api_settings, **token):
    return replace(
        api_settings,
        api={
            "tokens": {
                "chatops": {
                    "sha256": hash_token(BOT),
                    "role": "approver",
                    "act_for_users": True,
                    "identity": "chatops-bot",
                    **token,
                }
            }
        },
        auth={
            "users": {
                "alice": {"password_hash": "pbkdf2_sha256$1$AA==$AA==", "role": "approver"},
                "carol": {"password_hash": "pbkdf2_sha256$1$AA==$AA==", "role": "admin"},
                "vic": {"password_hash": "pbkdf2_sha256$1$AA==$AA==", "role": "viewer"},
            }
        },
    )


BOT_AUTH = {"Authorization": f"Bearer {BOT}"}


def test_a_chatops_bot_decides_for_configured_people_and_critical_needs_two(
    runtime, api_settings, make_client
):
    client = make_client(services_of(runtime, bot_settings(api_settings)))
    execution, approval = run_paused(runtime.engine)
    with runtime.store.db.write() as conn:
        conn.execute("UPDATE approvals SET required_approvals = 2 WHERE id = ?", (approval["id"],))
    assert_json_error(decide(client, approval["id"], BOT_AUTH, decision="approve"), 400, "actor: required")
    assert_json_error(
        decide(client, approval["id"], BOT_AUTH, decision="approve", actor="mallory"),
        403,
        "not a configured console user",
    )
    assert_json_error(
        decide(client, approval["id"], BOT_AUTH, decision="approve", actor="vic"), 403, "viewer role"
    )
    assert_json_error(
        decide(client, approval["id"], BOT_AUTH, decision="approve", actor="system:timeout"), 400, "actor:"
    )
    first = decide(client, approval["id"], BOT_AUTH, decision="approve", actor="alice", comment="ok")
    assert first.status_code == 200 and first.json()["status"] == "recorded", first.text
    assert "1 more approver(s) needed" in first.json()["message"] and first.json()["actor"] == "alice"
    assert_json_error(
        decide(client, approval["id"], BOT_AUTH, decision="approve", actor="ALICE"), 409, "already voted"
    )
    second = decide(client, approval["id"], BOT_AUTH, decision="approve", actor="carol")
    assert second.status_code == 200 and second.json()["status"] == "approved"
    assert second.json()["role"] == "approver"  # carol is admin, the bot only approver
    assert [v["actor"] for v in second.json()["approval"]["votes"]] == ["alice", "carol"]
    assert runtime.engine.wait(execution.id, timeout=30).state == State.SUCCESS
    # the env token does not act for people
    assert_json_error(
        decide(client, approval["id"], decision="approve", actor="alice"), 403, "may not act for other"
    )


def test_an_overdue_approval_is_expired_not_approved(api_settings, make_client, approval_clock):
    rt = embedded_runtime(api_settings, max_workers=1, expiry_timer_s=None, approval_clock=approval_clock)
    try:
        client = make_client(services_of(rt))
        execution, approval = run_paused(rt.engine)
        approval_clock.advance(minutes=api_settings.approval_timeout_minutes + 1)
        assert_json_error(decide(client, approval["id"], decision="approve"), 409, "expired")
        assert rt.store.approvals.get(approval["id"])["status"] == "expired"
        assert rt.engine.wait(execution.id, timeout=30).state == State.SUCCESS
    finally:
        rt.close()


def test_a_busy_store_is_503_and_the_decision_either_commits_or_does_nothing(client, runtime, monkeypatch):
    _, approval = run_paused(runtime.engine)
    audit_before = len(runtime.store.audit.trail(limit=1000))
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(database, "LOCK_RETRIES", 2)
    blocker = sqlite3.connect(runtime.store.db.path, timeout=1)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        busy = decide(client, approval["id"], decision="approve")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert_json_error(busy, 503, "busy")
    assert busy.headers["retry-after"] == "2"
    assert runtime.store.approvals.get(approval["id"])["status"] == "pending"
    assert runtime.store.approvals.votes(approval["id"]) == []
    assert len(runtime.store.audit.trail(limit=1000)) == audit_before
    assert decide(client, approval["id"], decision="approve").status_code == 200  # the retry goes through


def test_parts_that_did_not_start_are_503(api_settings, make_client):
    client = make_client(Services(api_settings, None, None, None, error="Store unavailable: locked"))
    body = assert_json_error(client.get("/api/approvals", headers=AUTH), 503, "approval service unavailable")
    assert "Store unavailable: locked" in body["error"]
    assert_json_error(client.get("/api/executions/abc", headers=AUTH), 503, "engine unavailable")


# -- executions -------------------------------------------------------------------------------------


def test_an_execution_from_pause_to_outcome(client, runtime):
    execution, approval = run_paused(runtime.engine)
    paused = client.get(f"/api/executions/{execution.id}", headers=AUTH).json()
    assert paused["state"] == "PAUSED" and paused["flow"] == "devops.loop.devops-loop"
    assert paused["decision"]["verdict"] == "ROLLBACK" and paused["decision"]["summary"]
    assert {"verdict", "severity", "confidence", "summary"} <= set(paused["decision"])
    assert paused["plan"]["needs_approval"] is True and paused["approval"]["status"] == "pending"
    assert paused["deployment"]["status"] == "awaiting approval" and paused["outcome"] is None
    assert paused["links"]["console"] == f"/executions?execution={execution.id}"
    assert [t["task"] for t in paused["tasks"]][:4] == ["collect", "analyze", "summarize", "decide"]

    decide(client, approval["id"], decision="approve")
    runtime.engine.wait(execution.id, timeout=30)
    done = client.get(f"/api/executions/{execution.id}", headers=AUTH).json()
    assert done["state"] == "SUCCESS" and done["ended_at"]
    assert done["approval"]["status"] == "approved" and done["deployment"]["status"] == "rolled back"
    assert done["outcome"]["outcome"]["deployment_status"] == "rolled back"
    assert [a["name"] for a in done["outcome"]["executed"]] == ["collect_diagnostics", "rollback_deployment"]


def test_an_execution_that_needed_nobody(client, runtime):
    execution = runtime.engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="ci", timeout=30)
    body = client.get(f"/api/executions/{execution.id}", headers=AUTH).json()
    assert (
        body["state"] == "SUCCESS" and body["approval"] is None and body["decision"]["verdict"] == "CONTINUE"
    )


def test_unknown_and_unreachable_executions(client, runtime, monkeypatch):
    assert_json_error(client.get("/api/executions/nope", headers=AUTH), 404, "execution nope not found")
    assert_json_error(client.get("/api/executions/a%20b", headers=AUTH), 404, "execution not found")

    def down(execution_id):
        raise BackendUnavailable("Kestra is unreachable at its URL")

    monkeypatch.setattr(runtime.engine, "get_execution", down)
    response = client.get("/api/executions/abc", headers=AUTH)
    assert_json_error(response, 503, "engine unreachable")
    assert response.headers["retry-after"] == "5"


# -- the rest ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api", 404),
        ("POST", "/api/alerts", 415),  # they exist now: a body that is not JSON is refused
        ("POST", "/api/deployments", 415),
        ("GET", "/api/alerts", 405),
        ("GET", "/api/nothing/here", 404),
        ("GET", "/api/approvals/ap-1/decision", 405),
        ("DELETE", "/api/executions/x", 405),
    ],
)
def test_every_answer_under_api_is_json(client, method, path, status):
    assert_json_error(client.request(method, path, headers=AUTH), status)


def test_an_unexpected_failure_is_one_line_and_logged(client, runtime, monkeypatch, caplog):
    def boom() -> list:
        raise RuntimeError("internal detail that must stay in the log")

    monkeypatch.setattr(ApprovalService, "pending", lambda self: boom())
    with caplog.at_level(logging.ERROR, logger="console.api"):
        response = client.get("/api/approvals", headers=AUTH)
    body = assert_json_error(response, 500, "internal error (RuntimeError)")
    assert "internal detail" not in body["error"] and "Traceback" not in response.text
    assert "internal detail that must stay in the log" in caplog.text


def test_the_token_is_never_logged(client, runtime, caplog):
    _, approval = run_paused(runtime.engine)
    with caplog.at_level(logging.DEBUG):
        client.get("/api/health")
        client.get("/api/approvals", headers=AUTH)
        client.get("/api/approvals", headers={"Authorization": f"Bearer {TOKEN}-wrong"})
        decide(client, approval["id"], decision="approve")
        client.get(f"/api/approvals?token={TOKEN}", headers=AUTH)
    server_side = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert TOKEN not in server_side  # (the test's own HTTP client logs its URLs; the server never does)
    assert "API GET /api/approvals -> 200 (token env" in caplog.text
    assert "API POST /api/approvals/" in caplog.text


def test_whoever_launched_a_run_cannot_approve_it_through_the_api(runtime, api_settings, make_client):
    _, approval = run_paused(runtime.engine)  # launched by alice
    client = make_client(services_of(runtime, replace(api_settings, api_identity="alice")))
    assert_json_error(decide(client, approval["id"], decision="approve"), 403, "launched this run")
    assert runtime.store.approvals.get(approval["id"])["status"] == "pending"
