"""Fixtures of the demo service tests. The stack launcher itself is ``demo_service.testing`` so other
test folders can import it without this conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo_service.testing import DemoStack, start_demo_stack


@pytest.fixture
def demo_stack(tmp_path: Path) -> Iterator[Any]:
    """``demo_stack(**kwargs)`` starts a stack (see ``start_demo_stack``); all are stopped after the
    test, and a test fails if one of its instances outlived its deployer."""
    stacks: list[DemoStack] = []

    def start(**kwargs: Any) -> DemoStack:
        stack = start_demo_stack(tmp_path / f"stack-{len(stacks)}", **kwargs)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
    leftovers = [pid for stack in stacks for pid in stack.leftovers]
    assert not leftovers, f"instances outlived their deployer: {leftovers}"
