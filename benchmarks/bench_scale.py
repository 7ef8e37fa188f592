"""Scale: console page time, memory and bytes per execution with 1k, 10k and 100k executions.

The store is seeded the way the console fills it, only faster:

* every demo scenario runs once through the embedded engine (real analysis, task runs, logs,
  approvals decided by a second person, actions, outcomes, audit rows, the snapshot and decision
  documents): these are the templates;
* the templates are cloned in bulk inside ``Store.db.write()`` transactions (``executemany``, 5,000
  executions per transaction) with new ids, start times spread over the last ``--days`` days, one
  of ``--services`` services, and their task runs, logs, deployment, actions, outcome, decided
  approval + vote and audit rows. Each clone gets a decision document of its own (a real
  deployment's decision differs from every other), stored once like the console stores it; the
  clones share their template's snapshot document, whose compressed size is reported apart
  ("besides one compressed snapshot per deployment"). A few real approvals are left pending.

Bytes per execution = (file size - snapshot documents) / executions, after a checkpoint.

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
            result = service.vote(item["id"], who, n % 3 != 0, "bench decision")
            if result.status != "recorded":
                break
    real_s = time.perf_counter() - t0
    engine.close()
    engine.store.close()
    return {"templates": len(ids), "real_s": real_s}


def _templates(conn) -> list[dict[str, Any]]:
    from console.storage.executions import decode_history

    out = []
    for ex in conn.execute("SELECT * FROM executions WHERE state = 'SUCCESS'").fetchall():
        ex = dict(ex)
        eid = ex["id"]
        one = conn.execute
        start = datetime.fromisoformat(ex["start_date"].replace("Z", "+00:00"))
        hist = [(h["state"], h["date"]) for h in decode_history(ex["histories"])]
        out.append(
            {
                "execution": ex,
                "offsets": [
                    (state, datetime.fromisoformat(date.replace("Z", "+00:00")) - start)
                    for state, date in hist
                ],
                "runs": [dict(r) for r in one("SELECT * FROM task_runs WHERE execution_id = ?", (eid,))],
                "logs": [dict(r) for r in one("SELECT * FROM logs WHERE execution_id = ?", (eid,))],
                "deployment": dict(
                    one("SELECT * FROM deployments WHERE execution_id = ?", (eid,)).fetchone()
                ),
                "outcome": (lambda r: dict(r) if r else None)(
                    one("SELECT * FROM outcomes WHERE execution_id = ?", (eid,)).fetchone()
                ),
                "approval": (lambda r: dict(r) if r else None)(
                    one("SELECT * FROM approvals WHERE execution_id = ?", (eid,)).fetchone()
                ),
                "actions": [dict(r) for r in one("SELECT * FROM actions WHERE execution_id = ?", (eid,))],
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
    from console.storage import Store
    from console.storage.codec import put_document_in
    from console.storage.executions import encode_history

    store = Store(data_dir / "console.sqlite3")
    have = store.db.conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
    if have >= target:
        store.close()
        return {"cloned": 0, "clone_s": 0.0}
    templates = _templates(store.db.conn)
    for t in templates:
        key = t["deployment"]["decision_ref"]
        t["decision"] = store.documents.get(key) if key else None
        record_ref = json.loads(t["outcome"]["record"]) if t["outcome"] else None
        t["record_key"] = record_ref.get("$doc") if isinstance(record_ref, dict) else None
        t["record"] = store.documents.get(t["record_key"]) if t["record_key"] else None
    rng = random.Random(have)
    now = datetime.now(UTC)
    span_s = days * 86400
    t0 = time.perf_counter()
    made = 0
    while have + made < target:
        batch = min(CHUNK, target - have - made)
        tables = (
            "executions", "task_runs", "execution_logs", "deployments", "outcomes", "approvals", "actions"
        )  # fmt: skip
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in (*tables, "approval_votes", "audit")}
        rows["logs"] = rows.pop("execution_logs")
        with store.db.write() as conn:
            for _ in range(batch):
                n = have + made
                made += 1
                t = templates[n % len(templates)]
                ex = t["execution"]
                eid = f"x{n:09d}{ex['id'][:12]}"
                # this run's own decision and outcome record, each stored once like the console does
                swaps: dict[str, str] = {}
                if t["decision"] is not None:
                    decision = _vary(t["decision"], rng)
                    decision["summary"] = f"{decision.get('summary')} [{eid}]"
                    swaps[t["deployment"]["decision_ref"]] = put_document_in(conn, "decision", decision)
                if t["record"] is not None:
                    record = {**t["record"], "execution_id": eid}
                    if isinstance(record.get("decision"), dict) and swaps:
                        record["decision"] = {"$doc": next(iter(swaps.values()))}
                    swaps[t["record_key"]] = put_document_in(conn, "outcome", record)

                def own(text: Any, swaps: dict[str, str] = swaps) -> Any:
                    if not isinstance(text, str):
                        return text
                    for old, new in swaps.items():
                        text = text.replace(old, new)
                    return text

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
                        "histories": encode_history(hist),
                        "inputs": ex["inputs"].replace(old_service, service),
                        "owner": "bench",
                        "heartbeat_at": end_s,
                    }
                )
                for run in t["runs"]:
                    rows["task_runs"].append(
                        {**run, "id": f"{run['id'][:8]}{eid}", "execution_id": eid,
                         "outputs": own(run["outputs"])}
                    )  # fmt: skip
                for log in t["logs"]:
                    rows["logs"].append({**log, "execution_id": eid})
                for action in t["actions"]:
                    rows["actions"].append({**action, "execution_id": eid})
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
                        "decision_ref": own(t["deployment"]["decision_ref"]),
                    }
                )
                if t["outcome"]:
                    rows["outcomes"].append(
                        {**t["outcome"], "execution_id": eid, "deployment_id": dep_id, "recorded_at": end_s,
                         "record": own(t["outcome"]["record"])}
                    )  # fmt: skip
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
                         "requested_at": start_s, "expires_at": end_s, "decided_at": end_s,
                         "decision": own(ap["decision"])}
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
            for table, items in rows.items():
                _insert(conn, table, items)
    elapsed = time.perf_counter() - t0
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # no ANALYZE: the console never runs it, so the query plans measured are the ones users get
    store.close()
    return {"cloned": made, "clone_s": elapsed}


def _vary(value: Any, rng: random.Random) -> Any:
    """A copy of a decision with every number moved a little, as another deployment's would be (so
    the clones' documents compress like real ones, not like copies of the templates)."""
    if isinstance(value, dict):
        return {k: _vary(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_vary(v, rng) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int):
        return max(0, round(value * rng.uniform(0.7, 1.3)))
    return round(value * rng.uniform(0.7, 1.3), 6)


def storage_bytes(data_dir: Path) -> dict[str, float]:
    """Bytes per execution besides the snapshots, and the snapshots' own compressed size."""
    from console.storage import Store

    store = Store(data_dir / "console.sqlite3")
    try:
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        executions = store.executions.count()
        snapshots, snapshot_bytes = store.documents.stored_bytes("snapshot")
        page_size = store.db.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        free = store.db.conn.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        store.close()
    used = (pages - free) * page_size
    return {
        "executions": executions,
        "bytes_per_execution": (used - snapshot_bytes) / max(1, executions),
        "snapshot_kb": snapshot_bytes / max(1, snapshots) / 1024,
        "snapshots": snapshots,
        "file_mb": used / 2**20,
    }


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
    parser.add_argument("--services", type=int, default=100, help="services the clones spread over")
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
        services = service_names(args.services, [])
        add_pending(data_dir, 6)
        table = []
        worst = 0.0
        peak = 0.0
        for level in args.levels:
            seeded = seed_clones(data_dir, level, services, args.days)
            size = storage_bytes(data_dir)
            if seeded["cloned"]:
                print(
                    f"\nseeded to {level:,} executions: {seeded['cloned']:,} cloned in "
                    f"{seeded['clone_s']:.1f} s ({seeded['cloned'] / seeded['clone_s']:,.0f} executions/s); "
                    f"database {size['file_mb']:,.0f} MB"
                )
            print(
                f"storage: {size['bytes_per_execution'] / 1024:.1f} KB per execution besides the snapshots; "
                f"{size['snapshots']} snapshot(s) of {size['snapshot_kb']:.1f} KB compressed on average"
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
