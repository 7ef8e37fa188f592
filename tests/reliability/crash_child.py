"""A console process for the crash test: launches executions and decides approvals until killed.

    python tests/reliability/crash_child.py DATA_DIR

It prints one line per committed fact, flushed, only after the call that commits it has returned:
``launched <execution_id>`` and ``decided <approval_id> <status> <execution_id>``. The parent
SIGKILLs it at an arbitrary moment and then checks that every printed fact survived. Steps are
slowed a little so that executions are caught mid-run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from console.access.approvals import AlreadyDecided, ApprovalService  # noqa: E402
from console.access.auth import Identity, Role  # noqa: E402
from console.domain.vocabulary import STEP_TASKS  # noqa: E402
from console.engines.embedded.runner import EmbeddedEngine  # noqa: E402
from console.loop import steps  # noqa: E402
from console.settings import Settings  # noqa: E402

SCENARIOS = ["memory-leak", "healthy-hotfix", "latency-regression", "crash-loop", "transient-blip"]


def _slow(step):
    def slowed(data, settings, **kwargs):
        time.sleep(0.03)
        return step(data, settings, **kwargs)

    return slowed


def main() -> None:
    for name in STEP_TASKS:
        setattr(steps, name, _slow(getattr(steps, name)))
    settings = Settings(data_dir=Path(sys.argv[1]))
    engine = EmbeddedEngine(settings, max_workers=2)
    service = ApprovalService(engine.store, engine, settings)
    carol = Identity("carol", Role.ADMIN)
    dave = Identity("dave", Role.APPROVER)
    print("ready", flush=True)
    i = 0
    while True:
        scenario = SCENARIOS[i % len(SCENARIOS)]
        execution_id = engine.launch_scenario(scenario, "alice")
        print(f"launched {execution_id}", flush=True)
        if i % 3 == 2:
            pending = service.pending()
            if len(pending) > 2:  # keep some pending on purpose
                item = pending[-1]
                who = carol if i % 2 else dave
                try:
                    result = service.vote(
                        item["id"], who, i % 4 != 0, f"decided by {who.name} in the crash test"
                    )
                except AlreadyDecided:
                    pass
                else:
                    if result.status in ("approved", "rejected"):
                        print(f"decided {item['id']} {result.status} {item['execution_id']}", flush=True)
        i += 1
        time.sleep(0.1)  # about the pace of the 2 workers: a few executions in flight at the kill


if __name__ == "__main__":
    main()
