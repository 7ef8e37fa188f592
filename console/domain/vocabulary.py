"""The loop's words, defined once: the tasks of an execution, the statuses a deployment goes
through, and who "decides" an approval nobody answered.

Both engines, the flows' tests, the presentation and the storage read these; nothing spells them
out again.
"""

from __future__ import annotations

from enum import StrEnum

LOOP_TASKS: tuple[str, ...] = (
    "collect",
    "analyze",
    "summarize",
    "decide",
    "approval",
    "execute",
    "verify",
    "record",
)
"""The tasks of one ``devops-loop`` execution, in order (Kestra's task ids, and the embedded engine's).
``verify`` measures the outcome after the actions (or after the decision when nothing ran)."""

APPROVAL_TASK = "approval"
"""The task that pauses for a human (Kestra's Pause); the only task that is not a step."""

STEP_TASKS: tuple[str, ...] = tuple(task for task in LOOP_TASKS if task != APPROVAL_TASK)
"""The tasks that run a step (``python -m console step NAME``)."""


class DeploymentStatus(StrEnum):
    """Where a deployment stands in the loop, as the console shows it."""

    ANALYZING = "analyzing"
    AWAITING_APPROVAL = "awaiting approval"
    ROLLED_BACK = "rolled back"
    """A rollback was done and changed the target (or, for a scenario, was simulated: the record's
    ``simulated`` flag says so)."""
    ROLLBACK_FAILED = "rollback failed"
    """A rollback was approved (or automatic) but failed or was refused by the executor."""
    RESULT_UNKNOWN = "result unknown"
    """A rollback was sent and whether it acted is not known yet (a timeout, a lost connection, a
    receiver that accepted it without showing its effect): never "rolled back" until the target's
    state shows it, never "rollback failed" when it may have happened."""
    SUPERSEDED = "superseded"
    """The service no longer ran the version the decision was about (another version, or another
    switch since): nothing ran."""
    HEALTHY = "healthy"
    REMEDIATED = "remediated"
    ESCALATED = "escalated"
    """A human rejected the risky actions, nobody answered in time, or the verdict was ESCALATE."""
    FAILED = "failed"
    CANCELLED = "cancelled"


TIMEOUT_ACTOR = "system:timeout"
"""Who "decides" an approval nobody answered in time (always a rejection)."""

CONSOLE_LABELS = frozenset(
    {
        "launched_by",
        "triggered_by",
        "source",
        "scenario",
        "service",
        "requested_by_source",
        "received_by",
        "announced_by",
        "severity",
        "incident",
        "alertname",
    }
)
"""Execution labels the console writes and reads back (who launched, where a run came from, what it
is about). Nobody outside may set them: see :func:`outside_labels`."""
CLAIMED_PREFIX = "claimed."
"""Where labels from outside that use one of :data:`CONSOLE_LABELS` are kept, as claims."""


def outside_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels that arrived from outside (an announcement's ``labels``), with every console-owned
    key (:data:`CONSOLE_LABELS`, in any case or spacing, and Kestra's reserved ``system.`` ones)
    moved under :data:`CLAIMED_PREFIX`: ``launched_by`` becomes ``claimed.launched_by``, shown as
    what the sender claimed, never read back as the console's own."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        bare = key.strip().lower()
        owned = bare in CONSOLE_LABELS or bare.startswith("system.") or bare.startswith("system:")
        out[CLAIMED_PREFIX + key.strip() if owned else key] = value
    return out

SUPERSEDED_ACTOR = "system:superseded"
"""Who closes an approval whose service moved past its decision (nothing runs; the comment says
what changed and when)."""
