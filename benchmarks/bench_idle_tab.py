"""What an open console tab costs while nobody touches it: one headless Chromium (Debian's) on one page
of ``streamlit run server.py`` for ``--seconds``, then the CPU time Chromium and the console's server
used meanwhile, read from /proc (user + system, all their processes). The pages poll on their own
(``ui/refresh.py``, the approval countdown, the Scenarios cards), so an idle tab is not free: this
prints what it costs.

    .venv/bin/python benchmarks/bench_idle_tab.py [--seconds 20] [PAGE ...]

Pages default to ``/``, ``/approvals`` (with one pending approval launched from the CLI) and
``/scenarios``. Run it on an otherwise idle machine: the figures are CPU seconds, not wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright

from tests.api.test_server import launch_from_cli
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, start_console_server, wait_ready

TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(root: int) -> set[int]:
    tree, out, todo = _children(root), set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo += tree.get(pid, [])
    return out


def _cpu_s(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def _chromium(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            if b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.add(pid)
        except OSError:
            continue
    return out


def measure(url: str, server_pid: int, seconds: float) -> tuple[float, float]:
    """(Chromium's CPU s, the server's CPU s) over ``seconds`` with ``url`` open and left alone."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        wait_ready(page)
        time.sleep(3)  # the first fragment runs settle
        chromium = _chromium(_descendants(os.getpid()))
        server = _descendants(server_pid)
        before = _cpu_s(chromium), _cpu_s(server)
        time.sleep(seconds)
        after = _cpu_s(chromium), _cpu_s(server)
        browser.close()
    return after[0] - before[0], after[1] - before[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=["/", "/approvals", "/scenarios"])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    server = start_console_server(Path(tempfile.mkdtemp(prefix="bench-idle-")), "idle")
    try:
        launch_from_cli(server.data_dir)  # one pending approval for /approvals
        print(f"CPU seconds used over {args.seconds:g} s with one tab open and left alone")
        print(f"{'page':<14}{'Chromium':>10}{'server':>10}{'% of a core':>13}")
        for path in args.pages:
            browser_s, server_s = measure(server.url + path, server.proc.pid, args.seconds)
            share = 100 * (browser_s + server_s) / args.seconds
            print(f"{path:<14}{browser_s:>10.2f}{server_s:>10.2f}{share:>12.0f}%")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
