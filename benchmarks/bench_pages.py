"""Script run time of every console page with 10,000 executions in the store.

Seeds a private data directory: each demo scenario runs once through the embedded engine (real
analysis, real task runs, logs, approvals, outcomes), then those executions are cloned inside
SQLite (through ``Store.db.write``) with new ids and earlier start times until the store holds the
requested count. Then each page is run under ``streamlit.testing.v1.AppTest``:

- cold: ``st.cache_data`` cleared before every run (what a user pays after the 5 s read TTL);
- warm: cached reads (a rerun within the TTL, e.g. a widget change);
- first: one run after ``st.cache_resource`` is cleared too (engine, store and the Learning read
  model rebuilt, as after a server restart).

AppTest's own overhead (it polls the script thread) is included, so the figures are upper bounds.

    .venv/bin/python benchmarks/bench_pages.py [--executions 10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

PAGES = ["overview", "deployments", "approvals", "executions", "metrics", "scenarios", "learning", "settings"]


def seed(data_dir: Path, executions: int) -> dict[str, float]:
    from console.domain.models import format_time, parse_time
    from console.engines.embedded.runner import EmbeddedEngine
    from console.loop.scenarios import list_scenarios
    from console.settings import load_settings

    settings = load_settings()
    engine = EmbeddedEngine(settings, recover=False)
    started = time.perf_counter()
    for scenario in list_scenarios(settings.mock_data_dir):
        engine.run_sync(scenario=scenario.id, triggered_by="bench", timeout=120)
    real_s = time.perf_counter() - started
    store = engine.store
    with store.db.read() as conn:
        base = [dict(r) for r in conn.execute("SELECT * FROM executions").fetchall()]
        runs = {
            e["id"]: [
                dict(r) for r in conn.execute("SELECT * FROM task_runs WHERE execution_id = ?", (e["id"],))
            ]
            for e in base
        }
        logs = {
            e["id"]: [
                dict(r)
                for r in conn.execute("SELECT * FROM execution_logs WHERE execution_id = ?", (e["id"],))
            ]
            for e in base
        }
        deps = {
            e["id"]: conn.execute("SELECT * FROM deployments WHERE execution_id = ?", (e["id"],)).fetchone()
            for e in base
        }
        outs = {
            e["id"]: conn.execute("SELECT * FROM outcomes WHERE execution_id = ?", (e["id"],)).fetchone()
            for e in base
        }
    finished = [e for e in base if e["state"] != "PAUSED"]  # clones never add pending approvals
    started = time.perf_counter()
    made = len(base)
    i = 0
    with store.db.write() as conn:
        while made < executions:
            src = finished[i % len(finished)]
            i += 1
            new_id = f"{src['id'][:12]}c{i:07d}"
            shift = timedelta(minutes=7 * i)
            start = format_time(parse_time(src["start_date"]) - shift)
            row = {**src, "id": new_id, "start_date": start}
            conn.execute(
                f"INSERT INTO executions ({','.join(row)}) VALUES ({','.join('?' * len(row))})",
                list(row.values()),
            )
            for run in runs[src["id"]]:
                r = {**run, "id": f"{run['id'][:10]}{new_id}", "execution_id": new_id}
                conn.execute(
                    f"INSERT INTO task_runs ({','.join(r)}) VALUES ({','.join('?' * len(r))})",
                    list(r.values()),
                )
            for log in logs[src["id"]]:
                lg = {k: v for k, v in log.items() if k != "id"} | {"execution_id": new_id}
                conn.execute(
                    f"INSERT INTO execution_logs ({','.join(lg)}) VALUES ({','.join('?' * len(lg))})",
                    list(lg.values()),
                )
            dep = deps[src["id"]]
            if dep is not None:
                d = {**dict(dep), "id": f"{dep['id']}-{i}", "execution_id": new_id}
                d["created_at"] = format_time(parse_time(dep["created_at"]) - shift)
                conn.execute(
                    f"INSERT INTO deployments ({','.join(d)}) VALUES ({','.join('?' * len(d))})",
                    list(d.values()),
                )
            out = outs[src["id"]]
            if out is not None:
                o = {**dict(out), "execution_id": new_id}
                conn.execute(
                    f"INSERT INTO outcomes ({','.join(o)}) VALUES ({','.join('?' * len(o))})",
                    list(o.values()),
                )
            made += 1
    clone_s = time.perf_counter() - started
    engine.close()
    return {"real_runs": len(base), "real_s": real_s, "cloned": made - len(base), "clone_s": clone_s}


def time_pages(runs: int) -> list[tuple[str, float, float, float, float]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    results = []
    for page in PAGES:
        at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
        at.session_state["demo_role"] = "admin"
        at.run()
        at.switch_page(f"pages/{page}.py").run()
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].message}")
        st.cache_data.clear()
        st.cache_resource.clear()  # first visit after a restart: engine, store, read models rebuilt
        t = time.perf_counter()
        at.run()
        first = time.perf_counter() - t
        cold, warm = [], []
        for _ in range(runs):
            st.cache_data.clear()
            t = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t)
        p90 = sorted(cold)[max(0, int(len(cold) * 0.9) - 1)]
        results.append((page, statistics.median(cold), p90, statistics.median(warm), first))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CONSOLE_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["CONSOLE_SECRETS"] = str(Path(tmp) / "none.toml")
        for name in ("KESTRA_URL", "TOGETHER_API_KEY"):
            os.environ.pop(name, None)
        info = seed(Path(tmp) / "data", args.executions)
        print(
            f"seeded {info['real_runs']} real runs in {info['real_s']:.1f} s, "
            f"cloned {info['cloned']} in {info['clone_s']:.1f} s "
            f"({info['real_runs'] + info['cloned']} executions)"
        )
        print(
            f"{'page':<12} {'cold median':>12} {'cold p90':>10} {'warm median':>12} {'first':>8}"
            f"   (ms, {args.runs} runs; first = one run after a restart)"
        )
        for page, cold, p90, warm, first in time_pages(args.runs):
            flag = "" if cold < 0.3 else "  over 300 ms"
            print(
                f"{page:<12} {cold * 1000:>12.0f} {p90 * 1000:>10.0f} {warm * 1000:>12.0f} "
                f"{first * 1000:>8.0f}{flag}"
            )


if __name__ == "__main__":
    main()
