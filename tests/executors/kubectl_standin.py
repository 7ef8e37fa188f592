"""A stand-in ``kubectl`` for the executor tests: an executable that appends its argv as JSON to a
file and answers (output, exit code, delay) as the test's rules say."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

KUBECTL_STANDIN = """#!{python}
# Stand-in kubectl for the executor tests: records its argv, answers as the test's rules say.
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps(args) + "\\n")
rules_path = os.environ.get("FAKE_KUBECTL_RULES", "")
rules = json.load(open(rules_path, encoding="utf-8")) if rules_path and os.path.exists(rules_path) else []
for rule in rules:
    if all(word in args for word in rule["match"]):
        time.sleep(rule.get("sleep", 0))
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("exit", 0))
"""


@dataclass
class FakeKubectl:
    bin_dir: Path
    log: Path
    rules_path: Path

    def on(self, *match: str, exit: int = 0, stdout: str = "", stderr: str = "", sleep: float = 0) -> None:
        """When every word of ``match`` is in the argv: sleep, print, exit with ``exit``."""
        rules = json.loads(self.rules_path.read_text()) if self.rules_path.exists() else []
        rules.append({"match": list(match), "exit": exit, "stdout": stdout, "stderr": stderr, "sleep": sleep})
        self.rules_path.write_text(json.dumps(rules))

    def calls(self) -> list[list[str]]:
        """Every argv it was run with (without the program name), in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    """Write the stand-in to ``tmp_path/bin/kubectl`` and put that directory first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(KUBECTL_STANDIN.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    fake = FakeKubectl(bin_dir, tmp_path / "kubectl-calls.jsonl", tmp_path / "kubectl-rules.json")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_KUBECTL_RULES", str(fake.rules_path))
    return fake
