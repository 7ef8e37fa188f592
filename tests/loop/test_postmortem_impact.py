"""The postmortem's Impact: the incident from its onset to its verified recovery, from real samples."""

from __future__ import annotations

import pytest

from console.loop.postmortem import build_postmortem
from tests.loop.conftest import material, run

pytestmark = pytest.mark.safety


def test_the_postmortem_impact_covers_the_incident_from_real_samples(rt, settings):
    """A scenario's postmortem reads its stored snapshot (said so: it ends at the decision); the
    Impact names each bad user-facing metric's peak and how long it was bad."""
    execution = run(rt, "memory-leak", comment="go ahead")
    md = build_postmortem(
        rt.store.executions.get(execution.id),
        snapshot=rt.store.deployments.snapshot_for_execution(execution.id),
        settings=settings,
        **material(rt, execution.id),
    )
    impact_section = md.split("## Impact\n", 1)[1].split("\n## ", 1)[0]
    assert "- From the onset at " in impact_section
    assert "(from real samples: the decision's snapshot (it ends at the decision), a recorded scenario" in (
        impact_section
    )
    assert "| Metric | Peak | Bad for | From | To |" in impact_section
    assert "| memory_utilization | " in impact_section
