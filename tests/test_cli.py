"""The CLI as a user runs it: a subprocess, exit codes, JSON on stdout, one-line errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import HEALTHY_SCENARIO, PROJECT_ROOT, ROLLBACK_SCENARIO

MOCK = PROJECT_ROOT / "mock-data"


def test_analyze_valid_and_invalid_input(cli, tmp_path):
    ok = cli("analyze", str(MOCK / f"{ROLLBACK_SCENARIO}.json"))
    assert ok.returncode == 0, ok.stderr
    decision = json.loads(ok.stdout)
    assert decision["verdict"] == "ROLLBACK"
    for key in (
        "confidence",
        "severity",
        "summary",
        "root_cause",
        "actions",
        "metrics",
        "log_patterns",
        "analyzer",
    ):
        assert key in decision
    bad = tmp_path / "bad.json"
    bad.write_text('{"deployment": {"id": "x"}, "metrics": {}, "logs": []}')
    for path in (bad, tmp_path / "missing.json"):
        result = cli("analyze", str(path))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_pauses_then_approve_rolls_back_and_exports_training(cli, tmp_path):
    paused = cli("run", ROLLBACK_SCENARIO, "--as", "alice")
    assert paused.returncode == 0, paused.stderr
    execution = json.loads(paused.stdout)
    assert execution["state"]["current"] == "PAUSED"
    assert "waiting for approval" in paused.stderr and "python -m console approve" in paused.stderr
    approval_id = paused.stderr.split("waiting for approval ")[1].split(";")[0]

    no_comment = cli("approve", approval_id, "--as", "bob", "--reject")
    assert no_comment.returncode == 2 and "needs a comment" in no_comment.stderr
    approved = cli("approve", approval_id, "--as", "bob")
    assert approved.returncode == 0, approved.stderr
    done = json.loads(approved.stdout)
    assert done["state"]["current"] == "SUCCESS"
    assert done["outputs"]["deployment_status"] == "rolled back"
    again = cli("approve", approval_id, "--as", "carol")
    assert again.returncode == 2 and "already approved by bob" in again.stderr

    direct = cli("run", HEALTHY_SCENARIO)
    assert json.loads(direct.stdout)["outputs"]["approval"] == "auto"

    out = tmp_path / "kto.jsonl"
    exported = cli("export-training", "--format", "kto", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and {"prompt", "completion", "label"} <= set(rows[0])
    sft = cli("export-training", "--format", "sft")
    assert all("messages" in json.loads(line) for line in sft.stdout.splitlines())


def test_run_with_reject_and_unknown_scenario(cli):
    own = cli("run", ROLLBACK_SCENARIO, "--reject", "--comment", "false alarm", "--as", "alice")
    assert own.returncode == 2 and "--decide-as" in own.stderr  # the launcher never decides alone
    rejected = cli(
        "run", ROLLBACK_SCENARIO, "--reject", "--comment", "no", "--as", "alice", "--decide-as", "bob"
    )
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["outputs"]["deployment_status"] == "escalated"
    unknown = cli("run", "no-such-scenario")
    assert unknown.returncode == 2 and "unknown scenario" in unknown.stderr


def test_step_json_and_kestra_outputs(cli):
    collected = cli("step", "collect", "-", stdin=json.dumps({"scenario": HEALTHY_SCENARIO}))
    assert collected.returncode == 0, collected.stderr
    snapshot = json.loads(collected.stdout)["snapshot"]
    analyzed = cli("step", "analyze", "--kestra", stdin=json.dumps({"snapshot": snapshot}))
    assert analyzed.returncode == 0, analyzed.stderr
    line = analyzed.stdout.strip()
    assert line.startswith("::{") and line.endswith("}::")
    outputs = json.loads(line[2:-2])["outputs"]
    assert outputs["decision"]["verdict"] == "CONTINUE"
    decided = cli("step", "decide", stdin=json.dumps({"decision": outputs["decision"]}))
    assert json.loads(decided.stdout)["plan"]["needs_approval"] is False
    bad = cli("step", "decide", stdin="[1, 2]")
    assert bad.returncode == 2 and "JSON object" in bad.stderr
    unknown = cli("step", "deploy", stdin="{}")
    assert unknown.returncode == 2 and "unknown step" in unknown.stderr


def test_recover_reports_nothing_on_a_clean_store(cli):
    result = cli("recover")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"recovered": []}


@pytest.mark.slow
def test_two_processes_deciding_at_once_give_one_decision(cli):
    paused = cli("run", ROLLBACK_SCENARIO, "--as", "alice")
    approval_id = paused.stderr.split("waiting for approval ")[1].split(";")[0]
    env = {**os.environ}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "console", "approve", approval_id, "--as", name],
            cwd=PROJECT_ROOT,
            env={**env, "CONSOLE_DATA_DIR": cli.data_dir, "CONSOLE_SECRETS": cli.secrets},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("bob", "carol", "dave")
    ]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    winners = [err for rc, err in results if rc == 0]
    assert len(winners) == 1, results
    winner = winners[0].strip().split(" by ")[-1]
    losers = [err for rc, err in results if rc != 0]
    assert all(f"already approved by {winner} at" in err for err in losers), results


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["bench"], []), (["bench", "--runs", "3", "--skip-large"], ["--runs", "3", "--skip-large"])],
)
def test_bench_passes_only_its_own_options(tmp_path, monkeypatch, argv, expected) -> None:
    """`python -m console bench` must not hand the word "bench" (sys.argv) to the benchmark's parser."""
    import console.__main__ as cli

    bench = tmp_path / "benchmarks" / "bench_analysis.py"
    bench.parent.mkdir()
    record = tmp_path / "argv.json"
    bench.write_text(
        "import json, pathlib\n"
        "def main(argv=None):\n"
        f"    pathlib.Path({str(record)!r}).write_text(json.dumps(argv))\n"
        "    return 0\n"
    )
    monkeypatch.setattr(cli, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["python -m console", *argv])
    assert cli.main(argv) == 0
    assert json.loads(record.read_text()) == expected


def test_the_approval_path_does_not_import_scipy():
    """``python -m console approve`` (and the API) reach the store, the approval rules and the
    engines without analysing anything: importing scipy there would cost every approval about a
    second of start-up (console/analysis/__init__.py)."""
    probe = (
        "import sys, console.__main__, console.runtime, console.access.approvals;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'drain3', 'plotly', 'streamlit'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
