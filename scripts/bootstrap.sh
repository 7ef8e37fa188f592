#!/usr/bin/env bash
# Create .venv (once) and install the given requirements file into it. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="${1:-requirements.txt}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PYTHON" -m venv "$ROOT/.venv"
fi
STAMP="$ROOT/.venv/.installed-$(basename "$REQUIREMENTS")"
if [ ! -f "$STAMP" ] || [ "$ROOT/$REQUIREMENTS" -nt "$STAMP" ] || [ "$ROOT/requirements.txt" -nt "$STAMP" ]; then
  "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$REQUIREMENTS"
  touch "$STAMP"
fi
