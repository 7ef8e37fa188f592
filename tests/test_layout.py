"""The tests are laid out like the code (docs/ARCHITECTURE.md, "Tests"): every directory of tests/ that
holds tests mirrors a package (``tests/loop/`` for ``console/loop/``, ``tests/ui/`` for ``ui/``) or is
one of the concerns that section names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _concerns(architecture: str) -> set[str]:
    section = architecture.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*`tests/([\w/]+)/`", section, re.M))


def _misplaced(root: Path, concerns: set[str]) -> list[str]:
    """Directories of ``root``/tests holding test files that mirror no package and are no concern."""
    tests = root / "tests"
    misplaced = []
    for directory in sorted({p.parent for p in tests.rglob("test_*.py")}):
        rel = directory.relative_to(tests).as_posix()
        if directory == tests or rel in concerns or rel.split("/")[0] in concerns:
            continue
        if (root / "console" / rel).is_dir() or (root / rel / "__init__.py").is_file():
            continue
        misplaced.append(f"tests/{rel}/")
    return misplaced


def test_every_test_directory_mirrors_a_package_or_is_a_named_concern():
    concerns = _concerns((ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    assert concerns, "docs/ARCHITECTURE.md's Tests section names no concern"
    assert all((ROOT / "tests" / c).is_dir() for c in concerns), concerns
    assert _misplaced(ROOT, concerns) == []


def test_the_check_sees_a_directory_that_mirrors_nothing(tmp_path: Path):
    for package in ("console/loop", "ui"):
        (tmp_path / package).mkdir(parents=True)
    (tmp_path / "ui" / "__init__.py").write_text("")
    for directory in ("loop", "ui", "kestra", "misc", "engines/embedded"):
        (tmp_path / "tests" / directory).mkdir(parents=True)
        (tmp_path / "tests" / directory / "test_x.py").write_text("")
    assert _misplaced(tmp_path, {"kestra"}) == ["tests/engines/embedded/", "tests/misc/"]
