"""Property tests (hypothesis): which inputs a run draws and how many.

The suite replays a fixed sample: the ``deterministic`` profile draws the same inputs on every run,
so CI passes or fails on the code, never on the luck of a seed. Breadth comes from exploring:
``HYPOTHESIS_PROFILE=explore`` draws fresh inputs, :data:`EXPLORE_FACTOR` times as many per test
(``--hypothesis-seed=N`` replays one such run); each failure found is kept as a regression case.
"""

from __future__ import annotations

import os

from hypothesis import settings

EXPLORE_FACTOR = 10
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "deterministic")

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(PROFILE)


def examples(in_the_suite: int) -> int:
    """``max_examples`` of a property test: ``in_the_suite`` in the suite's fixed sample, many more
    fresh ones when exploring."""
    return in_the_suite * EXPLORE_FACTOR if PROFILE == "explore" else in_the_suite
