#!/usr/bin/env bash
# Install (first run) and start the console on the embedded engine: the pages on http://localhost:8501
# and, on the same port, the HTTP API under /api/ (server.py; see README "HTTP API").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh" requirements.txt
cd "$ROOT"
exec .venv/bin/streamlit run server.py --server.headless true "$@"
