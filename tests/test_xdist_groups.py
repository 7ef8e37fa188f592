"""The suite's ``--dist loadgroup`` (tests/conftest.py's hook, on pytest 9.2 with pytest-xdist 3.8):
an ``xdist_group``'s tests run on one worker, and so do a module's tests that share a fixture made
once per module (tests/live and tests/evidence start their live stacks once, not once per worker);
long-running tests are started first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TESTS = '''
import os
from pathlib import Path

import pytest

SEEN = Path(__file__).parent / "seen"


def record(name):
    SEEN.mkdir(exist_ok=True)
    (SEEN / name).write_text(os.environ["PYTEST_XDIST_WORKER"])


@pytest.mark.xdist_group("shared-stack")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    record(f"grouped-{i}")


@pytest.mark.parametrize("i", range(6))
def test_free(i):
    record(f"free-{i}")
'''

SHARED = '''
import os
from pathlib import Path

import pytest

SEEN = Path(__file__).parent / "seen"
STARTS = Path(__file__).parent / "starts"


@pytest.fixture(scope="module")
def stack():
    STARTS.mkdir(exist_ok=True)
    (STARTS / os.environ["PYTEST_XDIST_WORKER"]).write_text("started")
    return "stack"


@pytest.mark.parametrize("i", range(6))
def test_on_the_stack(i, stack):
    pass


@pytest.mark.parametrize("i", range(6))
def test_alone(i):
    pass


@pytest.mark.slow
def test_long():
    SEEN.mkdir(exist_ok=True)
    (SEEN / "long").write_text(os.environ["PYTEST_XDIST_WORKER"])
'''


def run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    (directory / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n", encoding="utf-8"
    )
    (directory / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: long\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-v"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_groups_and_module_fixtures_stay_on_one_worker_and_long_tests_start_first(tmp_path: Path) -> None:
    (tmp_path / "test_grouping.py").write_text(TESTS, encoding="utf-8")
    (tmp_path / "test_shared.py").write_text(SHARED, encoding="utf-8")
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    seen = {path.name: path.read_text() for path in (tmp_path / "seen").iterdir()}
    assert len(seen) == 13
    assert len({worker for name, worker in seen.items() if name.startswith("grouped-")}) == 1
    assert len(list((tmp_path / "starts").iterdir())) == 1  # one worker made the module's stack
    ran = [line for line in result.stdout.splitlines() if f"[{seen['long']}]" in line and "PASSED" in line]
    assert "test_long" in ran[0], ran  # its worker's first test
