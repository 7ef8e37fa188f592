"""The steps on a live deployment, without live processes: collect from a configured source with a
fake clock, execute through the configured executor (a stand-in deployer), crash safety of execute,
verify when the source fails, and the one-line error for a service with no source."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from console.loop import steps
from console.telemetry.times import format_ts
from tests.executors.servers import closed_port_url, run_deployer
from tests.loop.conftest import DEPLOYED_AT, TOKEN, FakeClock, until_done

ROOT = Path(__file__).resolve().parents[2]
PLAN = {
    "auto": [{"name": "collect_diagnostics", "risk": "LOW", "reason": "dumps", "params": {}}],
    "approval": [
        {
            "name": "rollback_deployment",
            "risk": "HIGH",
            "reason": "leak",
            "params": {"service": "demo-service", "to_version": "v1.0.0"},
        }
    ],
    "needs_approval": True,
}
DEPLOYMENT = {
    "id": "dep-1",
    "service": "demo-service",
    "version": "v1.1.0",
    "previous_version": "v1.0.0",
    "deployed_at": format_ts(DEPLOYED_AT),
}
TARGET = {"version": "v1.0.0", "reason": "healthy, verified 10:02 for 45 s", "source": "revision history"}
APPROVED = {"approved": True, "approver": "bob", "comment": "leak confirmed", "rollback_target": TARGET}
"""An approval as the approval service resumes the run: with the target it checked against the
revision history (the plan's ``to_version`` came from the announcement: a hint, never used)."""
WATCHED = {
    "ended": "early",
    "reason": "hard guard",
    "evaluations": 8,
    "elapsed_s": 16.0,
    "notes": [],
    "links": {},
}
"""collect's verification: the run watched a live deployment (so its actions are real)."""
WATCHED_ROLLBACK = {
    "plan": PLAN,
    "approval": APPROVED,
    "verdict": "ROLLBACK",
    "deployment": DEPLOYMENT,
    "verification": WATCHED,
}
"""execute's input: the approved rollback plan of a watched live deployment."""


def executor_section(url: str) -> str:
    return (
        f"    executor: {{type: demo-service, url: '{url}', token_env: DEMO_DEPLOYER_TOKEN, "
        "verify_timeout_s: 2}\n"
    )


def test_execute_rolls_back_through_the_deployer_and_says_so(live):
    with run_deployer(TOKEN) as deployer:
        settings = live(executor_section(deployer.url))
        out = steps.execute(
            WATCHED_ROLLBACK | {"execution_id": "x"},
            settings,
        )
        assert deployer.posts("/rollback") == [
            {
                "by": "devops-loop (approved by bob)",
                "reason": "devops-loop rollback_deployment, execution x, after deployment dep-1, of v1.1.0",
                "to": "v1.0.0",
                "expected_version": "v1.1.0",  # compare-and-swap: the version the decision was about
            }
        ]
    assert out["deployment_status"] == "rolled back" and out["simulated"] is False and out["skipped"] == []
    diagnostics, rollback = out["executed"]
    assert diagnostics["mode"] == "auto" and diagnostics["label"] == "diagnostics collected"
    assert set(rollback) == {
        "name", "risk", "reason", "params", "mode", "watch", "target", "precondition", "request",
        "action", "status", "simulated", "dry_run", "executor", "detail", "label", "commands",
        "started_at", "finished_at", "evidence",
    }  # fmt: skip
    assert rollback["target"] == TARGET and rollback["params"]["to_version"] == "v1.0.0"
    assert rollback["precondition"]["state"]["version"] == "v1.1.0"  # read right before the call
    assert rollback["precondition"]["superseded"] is None and out["superseded"] is None
    assert (
        rollback["mode"] == "approved" and rollback["status"] == "done" and rollback["label"] == "rolled back"
    )
    assert rollback["executor"] == "demo-service" and rollback["simulated"] is False
    assert TOKEN not in json.dumps(out)


def test_a_failing_rollback_is_rollback_failed_with_the_reason_never_rolled_back(live):
    with run_deployer(TOKEN, error=(503, "the new instance did not become ready")) as deployer:
        out = steps.execute(
            {
                "plan": PLAN,
                "approval": APPROVED,
                "verdict": "ROLLBACK",
                "deployment": DEPLOYMENT,
                "verification": WATCHED,
            },
            live(executor_section(deployer.url)),
        )
    assert out["deployment_status"] == "rollback failed"
    rollback = out["executed"][1]
    assert rollback["status"] == "failed"
    assert (
        rollback["label"] == "rollback failed: deployer answered 503: the new instance did not become ready"
    )
    unreachable = steps.execute(
        WATCHED_ROLLBACK,
        live(executor_section(closed_port_url())),
    )
    assert unreachable["deployment_status"] == "rollback failed"
    assert "unreachable" in unreachable["executed"][1]["detail"]


def test_an_unusable_executor_section_fails_every_action_with_its_line(live):
    out = steps.execute(
        WATCHED_ROLLBACK,
        live("    executor: {type: kubctl}\n"),
    )
    assert out["deployment_status"] == "rollback failed" and out["simulated"] is False
    assert {a["status"] for a in out["executed"]} == {"failed"}
    assert out["executed"][1]["detail"].startswith(
        "executor not usable: services.demo-service.executor.type: must be one of simulated, demo-service, "
        "kubectl, webhook, got 'kubctl'"
    )


def test_a_service_without_an_executor_section_and_a_scenario_are_simulated(live):
    out = steps.execute(
        WATCHED_ROLLBACK,
        live(""),
    )
    assert out["simulated"] is True and out["deployment_status"] == "rolled back"
    assert out["executed"][1]["label"] == "rolled back (simulated)"
    with run_deployer(TOKEN) as deployer:
        scenario = steps.execute(
            {"plan": PLAN, "approval": APPROVED, "deployment": DEPLOYMENT, "scenario": {"id": "memory-leak"}},
            live(executor_section(deployer.url)),
        )
        given = steps.execute(  # a snapshot given as evidence, not a watched deployment
            {"plan": PLAN, "approval": APPROVED, "snapshot": {"deployment": DEPLOYMENT}},
            live(executor_section(deployer.url)),
        )
        assert deployer.posts("/rollback") == []  # neither touches a real service
    assert scenario["simulated"] is True and given["simulated"] is True


def test_an_action_recorded_by_an_interrupted_run_is_never_run_again(live):
    with run_deployer(TOKEN) as deployer:
        settings = live(executor_section(deployer.url))
        data = WATCHED_ROLLBACK
        reports: list[dict] = []
        first = steps.execute(data, settings, on_progress=lambda p: reports.append(json.loads(json.dumps(p))))
        assert len(deployer.posts("/rollback")) == 1
        # each action is reported checking, calling (a change), then with its result, in order
        assert [sorted(k for k, v in r.items() if "result" in v) for r in reports] == [
            [], [], ["0:auto:collect_diagnostics"], ["0:auto:collect_diagnostics"],
            ["0:auto:collect_diagnostics"], ["0:auto:collect_diagnostics", "1:approved:rollback_deployment"],
        ]  # fmt: skip
        phases = [r.get("1:approved:rollback_deployment", {}).get("phase") for r in reports]
        assert phases == [None, None, None, "checking", "calling", "calling"]
        again = steps.execute(data, settings, progress=reports[-1])
        assert len(deployer.posts("/rollback")) == 1  # not a second time
        assert again["executed"] == first["executed"] and again["deployment_status"] == "rolled back"
        # the process died during the call (its request was kept): never "failed"; the deployer keeps
        # idempotency keys, so the same call with the same key answers what the first one did
        calling = next(
            r for r in reports if r.get("1:approved:rollback_deployment", {}).get("phase") == "calling"
        )
        started = {**reports[-1], "1:approved:rollback_deployment": calling["1:approved:rollback_deployment"]}
        settled = steps.execute(data, settings, progress=started)
        assert len(deployer.posts("/rollback")) == 2 and len(deployer.records) == 1  # asked again, acted once
    rollback = settled["executed"][1]
    assert rollback["status"] == "done", rollback["detail"]
    assert rollback["evidence"]["reconciled"]["first_detail"].startswith("interrupted: the console stopped")
    assert rollback["evidence"]["replayed"] is True
    assert settled["deployment_status"] == "rolled back"


def test_collect_live_reads_the_configured_source_and_watches_the_window(live, tmp_path):
    settings = live("")
    log = tmp_path / "demo-service.log"
    lines = [
        {"ts": format_ts(DEPLOYED_AT + t), "level": "INFO", "message": f"GET /api/items 200 {t}"}
        for t in range(-20, 40)
    ]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    clock = FakeClock(DEPLOYED_AT + 0.5)
    record = {"id": "dep-9", "service": "demo-service", "version": "v1.1.0", "previous_version": "v1.0.0",
              "by": "alice", "at": format_ts(DEPLOYED_AT), "kind": "deploy"}  # fmt: skip
    out = until_done(steps.collect, {"deployment": record, "source": "deployer"}, settings, clock)
    assert out["snapshot"]["deployment"] == {
        "id": "dep-9",
        "service": "demo-service",
        "version": "v1.1.0",
        "previous_version": "v1.0.0",
        "environment": "live-demo",
        "deployed_at": format_ts(DEPLOYED_AT),
        "deployed_by": "alice",
    }
    stamps = [r["ts"] for r in out["snapshot"]["logs"]]
    assert stamps[0] == format_ts(DEPLOYED_AT - 15) and stamps[-1] == format_ts(DEPLOYED_AT + 30)
    verification = out["verification"]
    assert set(verification) == {
        "ended", "reason", "evaluations", "elapsed_s", "samples_after", "rule", "notes", "links",
        "baseline_health", "target_state",
    }  # fmt: skip
    assert verification["target_state"] is None  # no real executor to read the state from
    assert verification["ended"] == "window end" and verification["elapsed_s"] == 30.0
    assert verification["evaluations"] == 15 and clock.now == pytest.approx(DEPLOYED_AT + 30)
    assert "metrics: no Prometheus configured for this service" in verification["notes"]
    # logs only: nothing that matters can be judged, so no CONTINUE; no metric source, so no wait for one
    assert verification["rule"] == "insufficient-evidence" and verification["samples_after"] == 0


def test_verify_live_waits_the_post_action_window_and_a_failing_source_is_inconclusive(live):
    settings = replace(live("", prometheus=closed_port_url()), live_telemetry_grace_s=10)
    clock = FakeClock(DEPLOYED_AT + 40)
    data = {"deployment": DEPLOYMENT, "executed": [], "verification": WATCHED}
    looks: list[dict] = []
    out = until_done(steps.verify, data, settings, clock, looks=looks)["measured"]
    # one wait for the window (post_action_s: 15), then looks every poll until the grace is over
    assert looks[0]["until"] == format_ts(DEPLOYED_AT + 55)
    assert looks[0]["waiting_for"] == "the post-action window"
    assert all(look["waiting_for"].startswith("telemetry to come back") for look in looks[1:])
    assert clock.now == pytest.approx(DEPLOYED_AT + 55 + 10)
    assert out["status"] == "inconclusive" and out["source"] == "prometheus"
    assert out["reason"].startswith("could not read the post-action window: Prometheus")
    assert out["reason"].endswith(f"(telemetry lost since {format_ts(DEPLOYED_AT + 55)})")
    assert out["window"] == {"start": format_ts(DEPLOYED_AT + 40), "end": format_ts(DEPLOYED_AT + 55)}
    assert out["baseline"] == {"start": format_ts(DEPLOYED_AT - 15), "end": format_ts(DEPLOYED_AT)}


def test_the_cli_collect_for_a_service_without_a_source_exits_non_zero_with_one_line(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "CONSOLE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "console", "step", "collect", "-"],
        input=json.dumps({"service": "payment-service", "deployment_id": "d1", "version": "v9"}),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: collect: no telemetry source configured for service 'payment-service'")
    assert "Traceback" not in done.stderr
