#!/usr/bin/env bash
# Install (first run) and run every check: ruff, then the whole pytest suite including the browser test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh" requirements-dev.txt
cd "$ROOT"
# The browser test drives Debian's Chromium (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser test..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed and cannot be installed here: browser tests will be skipped" >&2
  fi
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n 2 "$@"
