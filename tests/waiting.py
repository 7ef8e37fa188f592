"""How a test waits: on a condition, for at most a bound that scales with the machine.

A wait ends as soon as its condition holds, so a bound costs nothing on a fast machine; it only
says when to give up. Every such bound is a multiple of one factor, ``TEST_TIME_SCALE`` (1 by
default): a slow or busy machine (CI beside other jobs, ``stress-ng --cpu 2``) raises it and nothing
else changes. No test asserts how long something took: timings belong in benchmarks/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

T = TypeVar("T")


def _scale() -> float:
    raw = os.environ.get("TEST_TIME_SCALE", "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        raise SystemExit(f"TEST_TIME_SCALE must be a number (got {raw!r})") from None
    if value <= 0:
        raise SystemExit(f"TEST_TIME_SCALE must be above 0 (got {raw!r})")
    return value


TIME_SCALE = _scale()
"""The factor every wait's bound is multiplied by (``TEST_TIME_SCALE``)."""


def patience(seconds: float) -> float:
    """``seconds`` of waiting on this machine: the bound times ``TEST_TIME_SCALE``."""
    return seconds * TIME_SCALE


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    *,
    step: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call ``predicate`` until it returns something truthy and return that; fail the test when
    :func:`patience` (``timeout``) seconds pass first."""
    bound = patience(timeout)
    deadline = time.monotonic() + bound
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {bound:g} s")
        time.sleep(step)


def wait_for_state(backend: Any, execution_id: str, states: Collection[Any], timeout: float = 60.0) -> Any:
    """The execution, read through ``backend.get_execution``, once it is in one of ``states``."""

    def reached() -> Any:
        execution = backend.get_execution(execution_id)
        return execution if execution.state in states else None

    return wait_until(reached, timeout, what=f"{execution_id} reaching {sorted(map(str, states))}")
