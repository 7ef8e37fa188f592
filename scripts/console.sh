#!/usr/bin/env bash
# Install (first run) and start the console on the embedded engine: the pages on http://localhost:8501
# and, on the same port, the HTTP API under /api/ (server.py; see README "HTTP API").
# CONSOLE_SKIP_INSTALL=1 skips the dependency check (an image or CI that installed them already).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${CONSOLE_SKIP_INSTALL:-}" != "1" ]; then
  "$ROOT/scripts/bootstrap.sh" requirements.txt
fi
cd "$ROOT"
exec .venv/bin/streamlit run server.py --server.headless true "$@"
