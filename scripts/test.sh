#!/usr/bin/env bash
# Install (first run) and run every check: ruff, the flow linter (what Kestra 1.3 would refuse in
# flows/), then the whole pytest suite including the browser and live tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh" requirements-dev.txt
cd "$ROOT"
# Browser tests drive Debian's Chromium (never a downloaded browser); live tests run Debian's
# Prometheus and Alertmanager binaries on loopback.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's ${missing[*]} for the browser and live tests..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "${missing[*]} not installed and cannot be installed here (needs root and apt-get):" \
      "the browser/live tests that need them will be skipped, each saying why" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/python -m console kestra lint flows/
# Python keeps what it compiled (console/, ui/, the tests as pytest rewrote them) in __pycache__/
# (git-ignored): a shell that sets PYTHONDONTWRITEBYTECODE would make every worker, console server
# and command-line process of the run compile them again (collecting the tests: 9.4 -> 3.7 CPU-s).
unset PYTHONDONTWRITEBYTECODE
# 4 workers on 2 cores: the live and browser tests mostly wait (windows, scrapes, page loads), so the
# other workers' tests use the cores meanwhile (on 2 busy cores: 631 s with -n 4, 924 s with -n 2).
exec .venv/bin/python -m pytest -n 4 "$@"
