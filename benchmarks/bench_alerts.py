"""The alert path's figures on real processes (tests/api/alert_stack.py): the demo service under load,
Debian's Prometheus (1 s scrapes and evaluations, livestack/prometheus/alerts.yml), Debian's Alertmanager
(group_wait 0 s, group_interval 1 s) posting to a real console server (``streamlit run server.py``).
Each cycle deploys v1.2.0-leak, lets the rule fire, waits for the incident run to pause for an
approval, approves it through the API (bob, through a chat-ops token), and waits for the rollback
and the alert's resolution.

    .venv/bin/python benchmarks/bench_alerts.py              # 5 cycles
    .venv/bin/python benchmarks/bench_alerts.py --cycles 3

Figures (median and max over the cycles):
- deploy → alert fired: from the deploy to Prometheus's ``startsAt`` (the leak crossing 90 %);
- alert fired → received: from ``startsAt`` to the console opening the incident (Prometheus sending,
  Alertmanager routing, the HTTP delivery);
- received → incident run paused: from the incident opened to its approval requested (collect's
  window around the alert, analyze, summarize, decide, the escalation);
- approval → previous version serving: from the API decision to the deployer running v1.0.0;
- approval → incident resolved: to Alertmanager's resolved delivery closing the incident.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.domain.models import parse_time  # noqa: E402
from tests.api.alert_stack import AlertStack, wait_for  # noqa: E402


def cycle(stack: AlertStack, seen: set[str]) -> dict[str, float]:
    deployed = time.time()
    stack.demo.deploy("v1.2.0-leak", by="alice")
    store = stack.store()
    try:
        incident = wait_for(
            "the incident",
            lambda: next(
                (i for i in store.incidents.list(service="demo-service") if i["id"] not in seen), None
            ),
            90,
        )
        seen.add(incident["id"])
        execution_id = wait_for("its run", lambda: store.incidents.get(incident["id"])["execution_id"], 30)
        approval = wait_for("its approval", lambda: store.approvals.for_execution(execution_id), 90)
        starts = parse_time(store.incidents.get(incident["id"])["alerts"][0]["starts_at"]).timestamp()
        opened = parse_time(incident["opened_at"]).timestamp()
        paused = parse_time(approval["requested_at"]).timestamp()
        approved = time.time()
        answer = stack.decide(approval["id"], "bob")
        if answer.status_code != 200:
            raise RuntimeError(f"the approval was refused: {answer.text}")
        wait_for("v1.0.0 serving", lambda: stack.demo.status()["version"] == "v1.0.0", 30, every=0.05)
        serving = time.time()
        resolved = wait_for(
            "the resolution",
            lambda: (i := store.incidents.get(incident["id"]))["status"] == "resolved" and i,
            90,
        )
        wait_for("the run's end", lambda: store.executions.get(execution_id).state.terminal, 90)
        return {
            "deploy → alert fired": starts - deployed,
            "alert fired → received": opened - starts,
            "received → incident run paused": paused - opened,
            "approval → previous version serving": serving - approved,
            "approval → incident resolved": parse_time(resolved["resolved_at"]).timestamp() - approved,
        }
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = AlertStack.start(Path(tmp))
        try:
            stack.wait_scraped()
            stack.mark_known_good("v1.0.0")  # the rollback target (this console watched no deploy)
            rows: list[dict[str, float]] = []
            seen: set[str] = set()
            for n in range(args.cycles):
                rows.append(cycle(stack, seen))
                print(
                    f"cycle {n + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in rows[-1].items()), flush=True
                )
                time.sleep(3)  # the rolled-back service settles before the next leak
        finally:
            stack.stop()
    print(
        f"\n| what ({len(rows)} leaky deploys, `benchmarks/bench_alerts.py`) | median | max |\n|---|---|---|"
    )
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"| {key} | {statistics.median(values):.1f} s | {max(values):.1f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
