"""The house holds: the import-linter contracts in pyproject.toml (layers of console/, no Streamlit
in console/, no import circle, two engines that do not know each other), every SQL statement inside
console/storage/, and the layered picture in docs/ARCHITECTURE.md drawn from the same layers."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
INSTALL = "pip install -r requirements-dev.txt"
STORAGE = ROOT / "console" / "storage"

# a statement's first keywords (after leading whitespace and "--" comments). SELECT, WITH ... AS and
# the single words must be upper case (the project's SQL style), so UI text such as "Select a
# deployment from the list" or a "Begin" button is not taken for SQL; the others match in any case.
# COMMIT and ROLLBACK alone are left out: "ROLLBACK" is a verdict (a transaction starts with BEGIN).
SQL_STATEMENT = re.compile(
    r"""^(?:
        (?-i:SELECT\b[\s\S]*\bFROM\b)
      | (?-i:WITH\s+(?:RECURSIVE\s+)?\w+\s*(?:\([^)]*\)\s*)?AS\b)
      | (?-i:(?:BEGIN(?:\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED|TRANSACTION))?|VACUUM|ANALYZE)\s*;?\s*$)
      | (?-i:EXPLAIN\b)
      | INSERT\s+(?:OR\s+\w+\s+)?INTO\s+\w+
      | REPLACE\s+INTO\s+\w+
      | UPDATE\s+\w+\s+SET\b
      | DELETE\s+FROM\s+\w+(?:\s+WHERE\b|\s*;|\s*$)
      | CREATE\s+(?:UNIQUE\s+|TEMP\s+|TEMPORARY\s+)?(?:TABLE|INDEX|TRIGGER|VIEW)\b
      | ALTER\s+TABLE\s+\w+
      | DROP\s+(?:TABLE|INDEX|TRIGGER|VIEW)\b
      | PRAGMA\s+\w+
      | WITH\s+RECURSIVE\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def _run_lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_hold():
    if not LINT_IMPORTS.exists():
        pytest.skip(f"lint-imports is not installed beside {sys.executable}: {INSTALL}")
    done = _run_lint_imports(ROOT)
    assert done.returncode == 0, f"lint-imports failed:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout


def test_a_broken_layer_fails_the_contracts(tmp_path: Path):
    """The check is not vacuous: the storage layer importing the approval service breaks it."""
    if not LINT_IMPORTS.exists():
        pytest.skip(f"lint-imports is not installed beside {sys.executable}: {INSTALL}")
    for part in ("console", "ui"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    database = tmp_path / "console" / "storage" / "database.py"
    database.write_text(database.read_text() + "\nfrom console.access import approvals  # noqa\n")
    done = _run_lint_imports(tmp_path)
    assert done.returncode != 0
    assert "console is layered" in done.stdout and "BROKEN" in done.stdout
    assert "console.storage.database -> console.access.approvals" in done.stdout


def _sources() -> list[Path]:
    files = [p for p in (ROOT / "console").rglob("*.py") if STORAGE not in p.parents]
    files += [*(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]
    return sorted(files)


def _strip_comments(text: str) -> str:
    lines = text.strip().splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def sql_statements(source: str) -> list[tuple[int, str]]:
    """(line, first words) of every string constant in ``source`` that is an SQL statement; the
    literal parts of f-strings count too."""
    tree = ast.parse(source)
    parts_of_fstrings = {
        id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values
    }
    found = []
    for node in ast.walk(tree):
        texts: list[str] = []
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in parts_of_fstrings
        ):
            texts = [node.value]
        elif isinstance(node, ast.JoinedStr):
            texts = ["".join(v.value if isinstance(v, ast.Constant) else " x " for v in node.values)]
        for text in texts:
            statement = _strip_comments(text)
            if SQL_STATEMENT.match(statement):
                found.append((node.lineno, " ".join(statement.split())[:60]))
    return found


def test_no_sql_statement_outside_the_storage_package():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in _sources()
        for line, text in sql_statements(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "SQL belongs in console/storage/:\n" + "\n".join(offenders)


def test_the_sql_scan_finds_statements_and_leaves_prose_alone():
    caught = '''
conn.execute("SELECT id FROM executions WHERE state = ?", (s,))
conn.execute("INSERT OR REPLACE INTO artifacts (a) VALUES (?)")
conn.execute(f"UPDATE deployments SET {cols} WHERE execution_id = ?")
conn.execute("""
    -- the loose index scan
    WITH RECURSIVE names(metric) AS (SELECT 1) SELECT metric FROM names""")
conn.execute("PRAGMA user_version")
conn.execute("BEGIN IMMEDIATE")
conn.execute("delete from audit")
'''
    assert [line for line, _ in sql_statements(caught)] == [2, 3, 4, 5, 8, 9, 10]
    prose = '''
"""Decisions are idempotent: a conditional ``UPDATE ... WHERE status = 'pending'`` decides once."""
st.caption("Select a deployment from the table")
st.button("Update", key="update")
message = "Delete from the list? This cannot be undone."
label = "Begin"
commit = "Commit"
title = "With recursion, as always"
hint = "Update the settings and reload"
'''
    assert sql_statements(prose) == []


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [layers] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "console-layers"]
    return [" ".join(layer.split()) for layer in layers["layers"]]


def test_the_architecture_picture_draws_the_contracts_layers():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    [picture] = re.findall(r"```mermaid\n(.*?)```", doc, re.S)
    drawn = [" ".join(label.split()) for label in re.findall(r'\bL\d+\["([^"<]+)', picture)]
    assert drawn == _contract_layers()
    # and the arrows run one way, down: L1 --> L2 --> ... in order
    chain = re.findall(r"\bL(\d+)\s*-->\s*(?=L(\d+))", picture)
    assert chain and all(int(b) == int(a) + 1 for a, b in chain)
    assert {int(a) for a, _ in chain} == set(range(1, len(drawn)))


# -- docs/ARCHITECTURE.md names every module of console/ -------------------------------------------------


def _package_rows(text: str) -> dict[str, str]:
    """The package table's rows by their first cell's path (``console/loop/``, ``console/runtime.py``)."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\|\s*`(console/[^`]*)`", line)
        if match:
            rows[match.group(1)] = line
    return rows


def _unnamed_modules(architecture: str, console_dir: Path) -> list[str]:
    """Modules of ``console_dir`` the package table of ``architecture`` does not name: a module of a
    package is named when its file name (``runner.py``) is in that package's row; a top-level module
    has a row of its own."""
    rows = _package_rows(architecture)
    missing: list[str] = []
    for path in sorted(console_dir.rglob("*.py")):
        rel = path.relative_to(console_dir.parent).as_posix()
        if path.name == "__init__.py":
            continue
        parts = path.relative_to(console_dir).parts
        if len(parts) == 1:
            if f"console/{parts[0]}" not in rows:
                missing.append(rel)
            continue
        row = rows.get(f"console/{parts[0]}/", "")
        if f"`{path.name}`" not in row and f"{path.name}`" not in row and f"/{path.name}" not in row:
            missing.append(rel)
    return missing


def test_architecture_names_every_module():
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = _unnamed_modules(architecture, ROOT / "console")
    assert not missing, "docs/ARCHITECTURE.md's package table does not name: " + ", ".join(missing)


def test_the_module_check_sees_a_missing_module(tmp_path: Path):
    package = tmp_path / "console" / "loop"
    package.mkdir(parents=True)
    (package / "steps.py").write_text("")
    (package / "wiring.py").write_text("")
    (tmp_path / "console" / "runtime.py").write_text("")
    doc = "| `console/loop/` | `steps.py` (the steps) |\n| `console/runtime.py` | the root |\n"
    assert _unnamed_modules(doc, tmp_path / "console") == ["console/loop/wiring.py"]


def test_no_module_cites_a_missing_document():
    cited = re.compile(r"\b([A-Z][A-Z_]+\.md)\b")
    skip = {".venv", ".git", "node_modules"}
    documents = {
        path.name
        for top in (ROOT, ROOT.parent / "shared")
        for path in top.rglob("*.md")
        if not skip & set(path.relative_to(top).parts)
    }
    missing = []
    for path in [
        *ROOT.glob("console/**/*.py"),
        *ROOT.glob("demo_service/*.py"),
        *ROOT.glob("livestack/*.py"),
    ]:
        for name in set(cited.findall(path.read_text(encoding="utf-8"))):
            if name not in documents:
                missing.append(f"{path.relative_to(ROOT)} cites {name}")
    assert not missing, "; ".join(sorted(missing))
