"""``python -m console postmortem`` as a user runs it: a subprocess on a private data directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.loop.postmortem import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path):
    env = {
        **os.environ,
        "CONSOLE_DATA_DIR": str(tmp_path / "data"),
        "CONSOLE_SECRETS": str(tmp_path / "none.toml"),
    }
    for name in ("TOGETHER_API_KEY", "KESTRA_URL", "NOTIFY_SLACK_WEBHOOK_URL", "NOTIFY_WEBHOOK_URL"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.mark.slow
def test_after_a_run_and_an_approval_the_latest_postmortem_is_printed(cli, tmp_path):
    paused = cli("run", "memory-leak")
    assert paused.returncode == 0, paused.stderr
    approval_id = re.search(r"approve (ap-[0-9a-f]+)", paused.stderr).group(1)
    approved = cli("approve", approval_id, "--as", "bob")
    assert approved.returncode == 0, approved.stderr
    execution_id = json.loads(approved.stdout)["id"]

    printed = cli("postmortem", "--latest")
    assert printed.returncode == 0, printed.stderr
    md = printed.stdout
    assert md.startswith("# Postmortem: payment-service v1.2.3 rolled back (simulated)")
    assert re.findall(r"(?m)^## (.+)$", md) == list(SECTIONS)
    for section in ("Summary", "Impact", "Timeline", "Root cause", "Actions", "Outcome", "Follow-ups"):
        assert f"\n## {section}\n" in md
    assert "bob approved rollback_deployment" in md and execution_id in md
    # a scenario's "after" is a recording: the measured outcome never reads as a bare "resolved"
    summary, outcome = md.split("\n## Summary\n")[1], md.split("\n## Outcome\n")[1]
    assert "measured outcome: resolved (recorded scenario segment, simulated)." in summary
    assert "- Measured outcome: resolved (recorded scenario segment, simulated) — " in outcome
    bare = r"(?i)measured(?: outcome)?: resolved(?! \(recorded scenario segment, simulated\))"
    assert not re.search(bare, md)
    assert printed.stderr == ""

    out = tmp_path / "pm.md"
    saved = cli("postmortem", execution_id, "--out", str(out))
    assert saved.returncode == 0 and saved.stdout == ""
    assert saved.stderr == f"postmortem of {execution_id} (console) -> {out}\n"
    assert out.read_text(encoding="utf-8") == md


def test_a_continue_run_has_no_incident_and_says_so_in_one_line(cli):
    nothing = cli("postmortem", "--latest")
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert nothing.stderr == "no incident: no run has finished yet, so there is no postmortem to write\n"

    healthy = cli("run", "healthy-hotfix")
    assert healthy.returncode == 0, healthy.stderr
    execution_id = json.loads(healthy.stdout)["id"]
    latest = cli("postmortem", "--latest")
    assert latest.returncode == 1 and latest.stdout == ""
    assert latest.stderr == (
        "no incident: no finished ROLLBACK or ESCALATE run "
        f"(the latest run, {execution_id}, ended CONTINUE)\n"
    )
    direct = cli("postmortem", execution_id)
    assert direct.returncode == 1 and direct.stderr.count("\n") == 1
    assert "ended with verdict CONTINUE: no incident" in direct.stderr

    unknown = cli("postmortem", "no-such-execution")
    assert unknown.returncode == 2 and unknown.stderr == "error: execution no-such-execution not found\n"
