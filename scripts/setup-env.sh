#!/usr/bin/env bash
# Creates .venv with the project installed (editable). Sourced by run-demo.sh and run-tests.sh.
# usage: source scripts/setup-env.sh [extras]   e.g. "test"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PYTHON" -m venv "$ROOT/.venv"
fi
extras="${1:-}"
spec="$ROOT"
[ -n "$extras" ] && spec="$ROOT[$extras]"
"$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"
export PATH="$ROOT/.venv/bin:$PATH"
