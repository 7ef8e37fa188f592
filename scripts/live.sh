#!/usr/bin/env bash
# Start the live stack on loopback: the demo service (deployer, instance, 20 req/s of load), Debian's
# Prometheus scraping it every second, and the console (http://127.0.0.1:8501, Scenarios → Live)
# pointed at them, with two password users whose passwords are printed at start. Ctrl-C stops
# everything. Options: ./scripts/live.sh --help (ports, state directory, windows, --check, --fresh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# LIVE_SKIP_BOOTSTRAP=1 uses .venv as it is (no install check; the tests set it)
if [ "${LIVE_SKIP_BOOTSTRAP:-0}" != "1" ] || [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$ROOT/scripts/bootstrap.sh" requirements.txt
fi
cd "$ROOT"
exec .venv/bin/python -m livestack.stack "$@"
