"""The console stays readable: no function of console/ above cyclomatic complexity 20 (radon's
count, as ``radon cc -s -n D console`` shows it; issue 19). Methods and nested functions count alike
(radon's figure for a class is derived from its methods'); a long elif chain becomes a table of
rules or a few named steps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

visitors = pytest.importorskip("radon.visitors", reason="radon is a dev dependency (requirements-dev.txt)")

CONSOLE = Path(__file__).resolve().parents[2] / "console"
LIMIT = 20


def functions(blocks: Iterable, classes: Iterable = (), prefix: str = "") -> Iterator[tuple[str, int, int]]:
    """(name, line, complexity) of every function radon measures: the functions with their nested
    functions, and the methods of the classes and of their inner classes."""
    for function in blocks:
        name = f"{prefix}{function.name}"
        yield name, function.lineno, function.complexity
        yield from functions(function.closures, (), f"{name}.")
    for cls in classes:
        yield from functions(cls.methods, cls.inner_classes, f"{prefix}{cls.name}.")


def offenders(root: Path) -> list[str]:
    """``file:line name (complexity)`` of each function of ``root``'s modules above :data:`LIMIT`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        visitor = visitors.ComplexityVisitor.from_code(path.read_text(encoding="utf-8"))
        for name, line, complexity in functions(visitor.functions, visitor.classes):
            if complexity > LIMIT:
                found.append(f"{path.relative_to(root.parent)}:{line} {name} ({complexity})")
    return found


def chain(indent: str, ifs: int = LIMIT) -> str:
    """The body of a function of complexity ``ifs + 1``."""
    return "".join(f"{indent}if x == {i}:\n{indent}    return {i}\n" for i in range(ifs))


def test_the_measure_sees_methods_nested_functions_and_inner_classes(tmp_path: Path) -> None:
    package = tmp_path / "package"
    package.mkdir()
    (package / "module.py").write_text(
        "def flat(x):\n" + chain("    ")
        + "def at_the_limit(x):\n" + chain("    ", LIMIT - 1)
        + "def outer(x):\n    def inner(x):\n" + chain("        ") + "    return inner\n"
        + "class A:\n    class B:\n        def m(self, x):\n" + chain("            ")
    )  # fmt: skip
    found = offenders(package)
    assert all(line.startswith("package/module.py:") for line in found)
    above = LIMIT + 1
    assert [line.split(" ", 1)[1] for line in found] == [
        f"flat ({above})", f"outer.inner ({above})", f"A.B.m ({above})",
    ]  # fmt: skip


def test_no_function_of_the_console_is_above_the_limit() -> None:
    too_complex = offenders(CONSOLE)
    for line in too_complex:
        print(line)
    assert too_complex == [], "above complexity {}:\n{}".format(LIMIT, "\n".join(too_complex))
