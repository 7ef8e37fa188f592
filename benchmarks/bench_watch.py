"""Watching holds no worker: a leak's deploy → decision with 1, 10 and 100 live deployments watched at
once, on the demo stack, by the embedded engine with its 2 workers.

    .venv/bin/python benchmarks/bench_watch.py                    # levels 1, 10, 100; 3 leaks each
    .venv/bin/python benchmarks/bench_watch.py --levels 1,100 --reps 2

Real processes on loopback: two demo stacks under load (one is deployed ``v1.2.0-leak``; the other,
``steady``, never changes), one Debian Prometheus scraping both every second, and the console's
embedded engine in this process. At level N, N - 1 deployments of other services (``bg-000`` ...,
read from the steady stack) are announced at the same moment as the leak and watched alongside it
for their whole verification window (CONTINUE at its end). Windows: baseline 15 s, verification 30 s.

Printed per level: the leak's deploy → decision (from the deployer's record of the deploy to the
end of the decide task) median and max, its ratio to level 1; how late the background runs decided
after their window's end (median, max: fairness); the CPU the console's process used (user + system
seconds, and per second of wall time) and Prometheus's; the run queue's depth over time (due runs
waiting for a worker, runs waiting for their next look), sampled every half second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.domain.executions import State  # noqa: E402
from console.domain.models import parse_time  # noqa: E402
from console.runtime import embedded_runtime  # noqa: E402
from console.settings import Settings  # noqa: E402
from console.telemetry.times import format_ts  # noqa: E402
from demo_service.testing import start_demo_stack  # noqa: E402
from livestack.processes import start_prometheus  # noqa: E402
from livestack.stack import instant_query, wait_steady  # noqa: E402

BASELINE_S, VERIFY_S, POST_ACTION_S = 15.0, 30.0, 15.0
RPS = 20.0


def services_yaml(path: Path, prom_url: str, background: int) -> Path:
    windows = f"{{baseline_s: {BASELINE_S:g}, verify_s: {VERIFY_S:g}, post_action_s: {POST_ACTION_S:g}}}"

    def entry(name: str, selector: str) -> str:
        return (
            f"  {name}:\n    environment: bench\n    windows: {windows}\n"
            f"    prometheus: {{url: '{prom_url}', profile: demo-service, "
            f"selector: 'service=\"{selector}\"', scrape_interval_s: 1}}\n"
        )

    text = "services:\n" + entry("demo-service", "demo-service")
    text += "".join(entry(f"bg-{i:03d}", "steady") for i in range(background))
    path.write_text(text, encoding="utf-8")
    return path


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds_of(pid: int) -> float:
    """utime + stime of another process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decided_at(execution: Any) -> float | None:
    run = execution.task_run("decide")
    if run is None or run.state != State.SUCCESS or not run.histories:
        return None
    return run.histories[-1].date.timestamp()


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.1f} s, max {max(values):.1f} s (n={len(values)})"


def run_level(rt: Any, leak_stack: Any, query: Any, level: int, rep: int) -> dict[str, Any]:
    engine = rt.engine
    wait_steady(query, BASELINE_S, RPS, 180)
    cpu0, wall0 = cpu_seconds_self(), time.time()
    background = []
    now = time.time()
    for i in range(level - 1):
        deployment = {
            "id": f"bg-{rep}-{i}",
            "service": f"bg-{i:03d}",
            "version": f"v1.{rep}.{i}",
            "previous_version": "v1.0.0",
            "deployed_at": format_ts(now),
            "deployed_by": "bench",
        }
        background.append(engine.launch_deployment(deployment, triggered_by="bench", source="bench"))
    record = leak_stack.deploy("v1.2.0-leak", by="alice")
    leak = engine.launch_deployment(record, triggered_by="alice", source="deployer")
    depth: list[tuple[float, int, int]] = []
    leak_decided = None
    while True:
        due, waiting = rt.store.queue.depth(time.time())
        depth.append((time.time() - wall0, due, waiting))
        execution = engine.get_execution(leak)
        leak_decided = leak_decided or decided_at(execution)
        open_bg = [b for b in background if not engine.get_execution(b).state.terminal]
        if leak_decided and not open_bg:
            break
        if time.time() - wall0 > VERIFY_S * 6:
            raise SystemExit(f"level {level}: runs did not decide within {VERIFY_S * 6:.0f} s")
        time.sleep(0.5)
    cpu = cpu_seconds_self() - cpu0
    wall = time.time() - wall0
    lateness = []
    for b in background:
        done = decided_at(engine.get_execution(b))
        if done is not None:
            lateness.append(done - (now + VERIFY_S))
    verdict = (engine.get_execution(leak).task_run("decide").outputs or {}).get("verdict")
    deployed = parse_time(record["at"]).timestamp()
    # back to the good version, the leak's run closed, for the next leak's baseline
    if not engine.get_execution(leak).state.terminal:
        engine.kill(leak, by="bench")
    leak_stack.deploy("v1.0.0", by="bench")
    return {
        "decision_s": leak_decided - deployed,
        "verdict": verdict,
        "lateness": lateness,
        "cpu_s": cpu,
        "wall_s": wall,
        "depth": depth,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,10,100", help="concurrent live deployments (default 1,10,100)")
    parser.add_argument("--reps", type=int, default=3, help="leaks per level (default 3)")
    parser.add_argument("--poll", type=float, default=2.0, help="LIVE_POLL_S (default 2)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        work = Path(tmp)
        leak_stack = start_demo_stack(work / "leak", load_rps=RPS)
        steady = start_demo_stack(work / "steady", load_rps=RPS)
        prom = None
        rt = None
        try:
            prom = start_prometheus(
                work / "prometheus",
                {
                    "demo-service": [f"127.0.0.1:{leak_stack.service_port}"],
                    "deployer": [f"127.0.0.1:{leak_stack.deployer_port}"],
                    "steady": [f"127.0.0.1:{steady.service_port}"],
                },
                labels={"steady": {"service": "steady"}},
            )
            prom_url = prom.url
            services = services_yaml(work / "services.yaml", prom_url, max(levels) - 1)
            settings = Settings(data_dir=work / "data", services_file=services, live_poll_s=args.poll)
            rt = embedded_runtime(settings, max_workers=2)

            def query(promql: str) -> float | None:
                return instant_query(prom_url, promql)

            results: dict[int, list[dict[str, Any]]] = {}
            for level in levels:
                prom_cpu0 = cpu_seconds_of(prom.pid)
                results[level] = [run_level(rt, leak_stack, query, level, rep) for rep in range(args.reps)]
                prom_cpu = cpu_seconds_of(prom.pid) - prom_cpu0
                rows = results[level]
                wall = sum(r["wall_s"] for r in rows)
                cpu = sum(r["cpu_s"] for r in rows)
                print(f"\n== {level} deployment(s) watched at once ({args.reps} leaks)")
                print(f"leak deploy -> decision: {stats([r['decision_s'] for r in rows])}; "
                      f"verdicts {[r['verdict'] for r in rows]}")  # fmt: skip
                late = [x for r in rows for x in r["lateness"]]
                if late:
                    print(f"background runs decided after their window's end: {stats(late)}")
                share = f"{100 * cpu / wall:.0f}% of one core"
                print(f"console process CPU: {cpu:.1f} s in {wall:.0f} s ({share}); "
                      f"Prometheus: {prom_cpu:.1f} s ({100 * prom_cpu / wall:.0f}%)")  # fmt: skip
                depth = [(t, d, w) for r in rows[-1:] for t, d, w in r["depth"]]
                print(f"queue (last leak): due for a worker max {max(d for _, d, _ in depth)}, "
                      f"median {statistics.median(d for _, d, _ in depth):.0f}; waiting for a look max "
                      f"{max(w for _, _, w in depth)}")  # fmt: skip
                series = " ".join(f"{t:.0f}s:{d}/{w}" for t, d, w in depth[::10])
                print(f"queue over time (t: due/waiting, every 5 s): {series}")
            base = statistics.median(r["decision_s"] for r in results[levels[0]])
            print("\nleak deploy -> decision, median, relative to level", levels[0])
            for level in levels:
                median = statistics.median(r["decision_s"] for r in results[level])
                print(f"  {level:>4} watched: {median:5.1f} s  ({100 * (median / base - 1):+.0f}%)")
            print(f"load average at end: {os.getloadavg()[0]:.1f}")
        finally:
            if rt is not None:
                unfinished = [State.CREATED, State.RUNNING, State.PAUSED]
                for execution in rt.engine.search_executions(states=unfinished, size=500).items:
                    with contextlib.suppress(Exception):  # it ended meanwhile
                        rt.engine.kill(execution.id, by="bench teardown")
                rt.close()
            if prom is not None:
                prom.stop()
            steady.stop()
            leak_stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
