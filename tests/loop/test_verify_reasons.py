"""verify on a watched live deployment that cannot be measured says why in one line, never fails the
step; a measured window carries the instance's state read from the target at its end, or a note
saying it could not be read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from console.loop import steps
from tests.executors.servers import closed_port_url, run_deployer
from tests.loop.conftest import DEPLOYED_AT, TOKEN, FakeClock, until_done
from tests.loop.test_live_steps import DEPLOYMENT, WATCHED, executor_section

LOOK = {"deployment": DEPLOYMENT, "executed": [], "verification": WATCHED}


def measured(settings, **deployment) -> dict:
    data = {**LOOK, "deployment": {**DEPLOYMENT, **deployment}}
    return until_done(steps.verify, data, settings, FakeClock(DEPLOYED_AT + 40))["measured"]


@pytest.mark.parametrize(
    ("prometheus", "deployment", "reason"),
    [
        (False, {}, "no Prometheus configured for service 'demo-service': recovery is measured on metrics"),
        (True, {"deployed_at": None}, "deployment.deployed_at is missing or not a timestamp"),
        (True, {"service": "nope"}, "no telemetry source configured for service 'nope'; add it to"),
        (True, {"service": ""}, "deployment needs 'service'"),
    ],
)
def test_a_window_that_cannot_be_measured_is_inconclusive_with_the_reason(
    live, prometheus, deployment, reason
) -> None:
    settings = live("", prometheus=closed_port_url() if prometheus else None)
    out = measured(settings, **deployment)
    assert out["status"] == "inconclusive" and out["source"] == "prometheus"
    assert out["reason"].startswith(reason)
    assert out["window"] == {"start": None, "end": None} and "health" not in out


def test_the_instance_state_at_the_window_end_is_read_or_said_unreadable(live) -> None:
    with run_deployer(TOKEN) as deployer:
        settings = live(executor_section(deployer.url), prometheus=closed_port_url())
        out = measured(replace(settings, live_telemetry_grace_s=0))
    assert out["status"] == "inconclusive" and out["reason"].startswith(
        "could not read the post-action window"
    )
    assert out["health"]["text"] == "v1.1.0 · ready · 0 crash restarts" and "notes" not in out
    gone = live(executor_section(closed_port_url()), prometheus=closed_port_url())
    out = measured(replace(gone, live_telemetry_grace_s=0))
    assert "health" not in out
    [note] = out["notes"]
    assert note.startswith(
        "the instance's state could not be read: deployer unreachable at http://127.0.0.1:"
    )
