#!/usr/bin/env bash
# Install (first run) and start the console on the embedded engine: http://localhost:8501
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh" requirements.txt
cd "$ROOT"
exec .venv/bin/streamlit run app.py --server.headless true "$@"
