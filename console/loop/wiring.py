"""Which earlier outputs each step of the loop reads: one table for both engines.

The embedded engine builds every step's input from this table (:func:`step_input`); the Kestra flows
write the same wiring as the ``input.json`` of each step's task (``{"plan": {{
outputs.decide.vars.plan | toJson }}, ...}``), and ``tests/kestra/test_wiring.py`` reads those
templates and checks them against this table, so the two cannot drift apart.

A :class:`Source` names a task and a dotted path into its outputs (``""``: all of them), or
:data:`EXECUTION` for the run's own facts (its id). ``collect`` and ``verify`` also read their own
previous look (``watch``, see :func:`console.loop.steps.waiting`). An optional source may be absent
on some runs (no approval was needed; a deployment run has no incident; a scenario has no
``verification``): the input then holds null, as the flows' ``?? null`` do. ``collect``'s other
inputs are the launch's (the flows' inputs, a webhook's body), not earlier outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXECUTION = "execution"
"""The pseudo-task whose outputs are the run's own facts: ``{"id": execution id}``."""


@dataclass(frozen=True)
class Source:
    task: str
    path: str = ""
    optional: bool = False

    def read(self, outputs: Mapping[str, Mapping[str, Any]]) -> Any:
        """The value in ``outputs`` (task id -> that task's outputs); None when absent (optional)."""
        value: Any = outputs.get(self.task)
        for key in self.path.split(".") if self.path else []:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None and not self.optional:
            raise KeyError(f"{self.task}.{self.path or '*'}")
        return value


def _optional(task: str, path: str = "") -> Source:
    return Source(task, path, optional=True)


SNAPSHOT = Source("collect", "snapshot")
DEPLOYMENT = Source("collect", "snapshot.deployment")
SCENARIO = _optional("collect", "snapshot.scenario")
VERIFICATION = _optional("collect", "verification")
APPROVAL = _optional("approval")
"""The approval's outputs (``approved``, ``comment``, ``approver``); absent when the plan needed none
(Kestra's If skips the Pause; the embedded engine's approval task says ``required: false``)."""

WIRING: dict[str, dict[str, Source]] = {
    "collect": {"watch": _optional("collect", "watch")},
    "analyze": {"snapshot": SNAPSHOT, "verification": VERIFICATION},
    "summarize": {"snapshot": SNAPSHOT, "decision": Source("analyze", "decision")},
    "decide": {"decision": Source("summarize", "decision"), "incident": _optional("collect", "incident")},
    "execute": {
        "plan": Source("decide", "plan"),
        "verdict": Source("decide", "verdict"),
        "approval": APPROVAL,
        "deployment": DEPLOYMENT,
        "scenario": SCENARIO,
        "verification": VERIFICATION,
        "execution_id": Source(EXECUTION, "id"),
    },
    "verify": {
        "deployment": DEPLOYMENT,
        "scenario": SCENARIO,
        "verification": VERIFICATION,
        "executed": Source("execute", "executed"),
        "watch": _optional("verify", "watch"),
    },
    "record": {
        "execution_id": Source(EXECUTION, "id"),
        "snapshot": SNAPSHOT,
        "decision": Source("summarize", "decision"),
        "plan": Source("decide", "plan"),
        "approval": APPROVAL,
        "executed": Source("execute", "executed"),
        "deployment_status": Source("execute", "deployment_status"),
        "measured": Source("verify", "measured"),
        "incident": _optional("collect", "incident"),
        "routing": _optional("decide", "routing"),
    },
}
"""For each step, the key of its input and where the value comes from."""


def step_input(task: str, outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The input of ``task`` from the outputs of the tasks before it (task id -> outputs, with
    :data:`EXECUTION` -> ``{"id"}``). A required source that is missing is a KeyError naming it."""
    return {key: source.read(outputs) for key, source in WIRING[task].items()}
