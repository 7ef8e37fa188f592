"""Scale: console page time and memory with 1k, 10k and 100k executions and a week of metrics.

The store is seeded the way the console fills it, only faster:

* every demo scenario runs once through the embedded engine (real analysis, task runs, logs,
  approvals decided by a second person, outcomes, audit rows): these are the templates;
* ``--services`` services x 6 metrics x ``--days`` days of 1-minute points go in through
  ``Store.add_metric_points`` (one transaction per service);
* the templates are cloned in bulk inside ``Store.write()`` transactions (``executemany``, 5,000
  executions per transaction) with new ids, start times spread over the last ``--days`` days, one
  of the ``--services`` services, and their task runs, logs, deployment, outcome, decided
  approval + vote and audit rows; a few real approvals are left pending on top.

At each level a fresh Python process (so seeding does not inflate its memory) runs every page under
``streamlit.testing.v1.AppTest`` as an admin, ``--runs`` times with ``st.cache_data`` cleared before
each run (cold: what a user pays after the 5 s read TTL) and once more warm, and reports the
median/p90 script run time, the first visit (per-process caches empty, e.g. the Learning read
model) and the process's RSS after each page and its peak (VmHWM). The machine's load average is
printed too: other work on the machine inflates every figure.

    .venv/bin/python benchmarks/bench_scale.py                          # 1k, 10k, 100k; 100 services x 7 days
    .venv/bin/python benchmarks/bench_scale.py --levels 1000 --days 1   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGES = ["overview", "deployments", "approvals", "executions", "metrics", "scenarios", "learning", "settings"]
METRICS = {
    "error_rate": (0.01, 0.004),
    "latency_p95_ms": (180.0, 25.0),
    "requests_per_second": (350.0, 40.0),
    "cpu_utilization": (0.45, 0.08),
    "memory_utilization": (0.55, 0.05),
    "pod_restarts": (0.0, 0.3),
}
CHUNK = 5000


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _env(data_dir: Path) -> None:
    os.environ["CONSOLE_DATA_DIR"] = str(data_dir)
    os.environ["CONSOLE_SECRETS"] = str(data_dir.parent / "none.toml")
    for name in ("KESTRA_URL", "TOGETHER_API_KEY"):
        os.environ.pop(name, None)


# --------------------------------------------------------------------------- seeding


def service_names(count: int, real: list[str]) -> list[str]:
    names = list(dict.fromkeys(real))[:count]
    i = 0
    while len(names) < count:
        names.append(f"svc-{i:03d}")
        i += 1
    return names


def seed_templates(data_dir: Path) -> dict[str, Any]:
    """Run every scenario for real; decide the paused ones (approve/reject) so they finish."""
    from console.access.approvals import ApprovalService
    from console.access.auth import Identity, Role
    from console.engines.embedded.runner import EmbeddedEngine
    from console.loop.scenarios import list_scenarios
    from console.settings import load_settings

    _env(data_dir)
    settings = load_settings()
    engine = EmbeddedEngine(settings, synchronous=True, recover=False)
    service = ApprovalService(engine.store, engine, settings)
    t0 = time.perf_counter()
    ids = [engine.launch_scenario(s.id, "bench") for s in list_scenarios(settings.mock_data_dir)]
    for n, item in enumerate(service.pending()):
        for who in (Identity("carol", Role.ADMIN), Identity("dave", Role.APPROVER)):
            result = service.decide(item["id"], who, n % 3 != 0, "bench decision")
            if result.status != "recorded":
                break
    real_s = time.perf_counter() - t0
    engine.close()
    engine.store.close()
    return {"templates": len(ids), "real_s": real_s}


def seed_metrics(data_dir: Path, services: int, days: float) -> dict[str, Any]:
    from console.storage import Store

    store = Store(data_dir / "console.sqlite3")
    real = [r[0] for r in store.conn.execute("SELECT DISTINCT service FROM deployments")]
    names = service_names(services, real)
    end = datetime.now(UTC).replace(second=0, microsecond=0).timestamp()
    points = int(days * 24 * 60)
    start = end - 60 * (points - 1)
    rng = random.Random(7)
    t0 = time.perf_counter()
    total = 0
    for name in names:
        series = {}
        for metric, (level, noise) in METRICS.items():
            series[metric] = [(start + 60 * k, max(0.0, level + rng.gauss(0, noise))) for k in range(points)]
        total += store.add_metric_points(name, None, series)
    elapsed = time.perf_counter() - t0
    store.close()
    return {"metric_points": total, "metric_s": elapsed, "services": names}


def _templates(conn) -> list[dict[str, Any]]:
    out = []
    for ex in conn.execute("SELECT * FROM executions WHERE state = 'SUCCESS'").fetchall():
        ex = dict(ex)
        eid = ex["id"]
        one = conn.execute
        start = datetime.fromisoformat(ex["start_date"].replace("Z", "+00:00"))
        hist = json.loads(ex["histories"])
        out.append(
            {
                "execution": ex,
                "offsets": [
                    (h["state"], datetime.fromisoformat(h["date"].replace("Z", "+00:00")) - start)
                    for h in hist
                ],
                "runs": [dict(r) for r in one("SELECT * FROM task_runs WHERE execution_id = ?", (eid,))],
                "logs": [dict(r) for r in one("SELECT * FROM execution_logs WHERE execution_id = ?", (eid,))],
                "deployment": dict(
                    one("SELECT * FROM deployments WHERE execution_id = ?", (eid,)).fetchone()
                ),
                "outcome": (lambda r: dict(r) if r else None)(
                    one("SELECT * FROM outcomes WHERE execution_id = ?", (eid,)).fetchone()
                ),
                "approval": (lambda r: dict(r) if r else None)(
                    one("SELECT * FROM approvals WHERE execution_id = ?", (eid,)).fetchone()
                ),
            }
        )
    for t in out:
        approval = t["approval"]
        t["votes"] = (
            [
                dict(r)
                for r in conn.execute("SELECT * FROM approval_votes WHERE approval_id = ?", (approval["id"],))
            ]
            if approval
            else []
        )
    return out


def _insert(conn, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    conn.executemany(
        f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
        [tuple(r[c] for c in cols) for r in rows],
    )


def seed_clones(data_dir: Path, target: int, services: list[str], days: float) -> dict[str, Any]:
    """Clone finished template executions until the store holds ``target`` executions."""
    from console.domain.models import format_time
    from console.storage import Store, dumps

    store = Store(data_dir / "console.sqlite3")
    have = store.conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
    if have >= target:
        store.close()
        return {"cloned": 0, "clone_s": 0.0}
    templates = _templates(store.conn)
    rng = random.Random(have)
    now = datetime.now(UTC)
    span_s = days * 86400
    t0 = time.perf_counter()
    made = 0
    while have + made < target:
        batch = min(CHUNK, target - have - made)
        tables = ("executions", "task_runs", "execution_logs", "deployments", "outcomes", "approvals")
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in (*tables, "approval_votes", "audit")}
        for _ in range(batch):
            n = have + made
            made += 1
            t = templates[n % len(templates)]
            ex = t["execution"]
            eid = f"x{n:09d}{ex['id'][:12]}"
            start = now - timedelta(seconds=rng.uniform(60, span_s))
            service = services[rng.randrange(len(services))]
            hist = [{"state": s, "date": format_time(start + off)} for s, off in t["offsets"]]
            start_s, end_s = hist[0]["date"], hist[-1]["date"]
            old_service = t["deployment"]["service"]
            rows["executions"].append(
                {
                    **ex,
                    "id": eid,
                    "start_date": start_s,
                    "end_date": end_s,
                    "updated_at": end_s,
                    "histories": dumps(hist),
                    "inputs": ex["inputs"].replace(old_service, service),
                    "owner": "bench",
                    "heartbeat_at": end_s,
                }
            )
            for run in t["runs"]:
                rows["task_runs"].append({**run, "id": f"{run['id'][:8]}{eid}", "execution_id": eid})
            for log in t["logs"]:
                rows["execution_logs"].append(
                    {**{k: v for k, v in log.items() if k != "id"}, "execution_id": eid}
                )
            dep_id = f"{t['deployment']['ref'] or 'dep'}-{eid[:10]}"
            rows["deployments"].append(
                {
                    **t["deployment"],
                    "id": dep_id,
                    "execution_id": eid,
                    "service": service,
                    "deployed_at": start_s,
                    "created_at": start_s,
                    "updated_at": end_s,
                    "decided_at": end_s if t["deployment"]["decided_at"] else None,
                }
            )
            if t["outcome"]:
                rows["outcomes"].append(
                    {**t["outcome"], "execution_id": eid, "deployment_id": dep_id, "recorded_at": end_s}
                )
            rows["audit"].append(
                {
                    "at": start_s,
                    "actor": "bench",
                    "event": "execution.launched",
                    "subject": eid,
                    "detail": "{}",
                }
            )
            ap = t["approval"]
            if ap:
                aid = f"ap-{eid[:12]}"
                rows["approvals"].append(
                    {**ap, "id": aid, "execution_id": eid, "deployment_id": dep_id, "service": service,
                     "requested_at": start_s, "expires_at": end_s, "decided_at": end_s}
                )  # fmt: skip
                for vote in t["votes"]:
                    rows["approval_votes"].append({**vote, "approval_id": aid, "at": end_s})
                rows["audit"].append(
                    {"at": start_s, "actor": ap["requested_by"], "event": "approval.requested",
                     "subject": aid, "detail": "{}"}
                )  # fmt: skip
                rows["audit"].append(
                    {"at": end_s, "actor": ap["decided_by"] or "?", "event": f"approval.{ap['status']}",
                     "subject": aid, "detail": "{}"}
                )  # fmt: skip
        with store.write() as conn:
            for table, items in rows.items():
                _insert(conn, table, items)
    elapsed = time.perf_counter() - t0
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # no ANALYZE: the console never runs it, so the query plans measured are the ones users get
    store.close()
    return {"cloned": made, "clone_s": elapsed}


def add_pending(data_dir: Path, count: int) -> None:
    """A few real pending approvals (the Approvals page's main list)."""
    from console.engines.embedded.runner import EmbeddedEngine
    from console.settings import load_settings

    _env(data_dir)
    engine = EmbeddedEngine(load_settings(), synchronous=True, recover=False)
    for i in range(count):
        engine.launch_scenario(["memory-leak", "crash-loop", "latency-regression"][i % 3], "bench")
    engine.close()
    engine.store.close()


# --------------------------------------------------------------------------- measuring (child process)


def measure_pages(data_dir: Path, runs: int) -> dict[str, Any]:
    _env(data_dir)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    results = {}
    rss_start = rss_mb()
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["demo_name"] = "bench-admin"
        at.session_state["demo_role"] = "admin"
        at.run()
        t = time.perf_counter()
        at.switch_page(f"pages/{page}.py").run()
        first = time.perf_counter() - t  # first visit in this process: per-process caches are empty
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].message}")
        cold = []
        for _ in range(runs):
            st.cache_data.clear()
            t = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t
        errors = [e.value for e in at.error] + [w.value for w in at.warning]
        results[page] = {
            "cold_median_ms": 1000 * statistics.median(cold),
            "cold_p90_ms": 1000 * sorted(cold)[max(0, int(len(cold) * 0.9) - 1)],
            "warm_ms": 1000 * warm,
            "first_ms": 1000 * first,
            "rss_mb": rss_mb(),
            "messages": [str(e)[:120] for e in errors],
        }
    return {"pages": results, "rss_start_mb": rss_start, "rss_peak_mb": rss_mb("VmHWM")}


# --------------------------------------------------------------------------- driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="seed into this folder and keep it")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # child: print JSON for the driver
        print(json.dumps(measure_pages(args.measure, args.runs)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = (args.keep or Path(tmp)) / "data"
        info = seed_templates(data_dir)
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"templates: {info['templates']} real scenario runs in {info['real_s']:.1f} s")
        metrics = seed_metrics(data_dir, args.services, args.days)
        print(
            f"metrics: {metrics['metric_points']:,} points ({args.services} services x {len(METRICS)} "
            f"metrics x {args.days:g} days at 1 min) in {metrics['metric_s']:.1f} s "
            f"({metrics['metric_points'] / metrics['metric_s']:,.0f} points/s)"
        )
        add_pending(data_dir, 6)
        table = []
        worst = 0.0
        peak = 0.0
        for level in args.levels:
            seeded = seed_clones(data_dir, level, metrics["services"], args.days)
            size_mb = sum(p.stat().st_size for p in data_dir.glob("console.sqlite3*")) / 2**20
            if seeded["cloned"]:
                print(
                    f"\nseeded to {level:,} executions: {seeded['cloned']:,} cloned in "
                    f"{seeded['clone_s']:.1f} s ({seeded['cloned'] / seeded['clone_s']:,.0f} executions/s); "
                    f"database {size_mb:,.0f} MB"
                )
            child = subprocess.run(
                [sys.executable, __file__, "--measure", str(data_dir), "--runs", str(args.runs)],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode != 0:
                print(child.stderr[-3000:])
                return 1
            result = json.loads(child.stdout.strip().splitlines()[-1])
            peak = max(peak, result["rss_peak_mb"])
            print(
                f"{'page':<12} {'cold median':>12} {'cold p90':>9} {'warm':>7} {'first':>7} {'RSS':>7}"
                f"   (ms, MB; {args.runs} runs)"
            )
            for page, r in result["pages"].items():
                worst = max(worst, r["cold_median_ms"])
                flag = "  OVER 500 ms" if r["cold_median_ms"] > 500 else ""
                note = f"  [{'; '.join(r['messages'])}]" if r["messages"] else ""
                print(
                    f"{page:<12} {r['cold_median_ms']:>12.0f} {r['cold_p90_ms']:>9.0f} {r['warm_ms']:>7.0f} "
                    f"{r['first_ms']:>7.0f} {r['rss_mb']:>7.0f}{flag}{note}"
                )
                table.append((level, page, r["cold_median_ms"]))
            print(f"load average now: {os.getloadavg()[0]:.1f}")
            print(
                f"page process: RSS {result['rss_start_mb']:.0f} MB at start, "
                f"peak {result['rss_peak_mb']:.0f} MB"
            )
        print("\nmedian cold page time (ms) by executions in the store")
        print(f"{'page':<12}" + "".join(f"{level:>10,}" for level in args.levels))
        for page in PAGES:
            cells = {lv: ms for lv, p, ms in table if p == page}
            print(f"{page:<12}" + "".join(f"{cells.get(lv, float('nan')):>10.0f}" for lv in args.levels))
        ok = worst <= 500 and peak <= 500
        print(f"\nworst page median {worst:.0f} ms, peak RSS {peak:.0f} MB: {'OK' if ok else 'OVER BUDGET'}")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
