#!/usr/bin/env bash
# Rebuild the PyTorch half of the regression corpus (tests/data/corpus/*.onnx, scripts/corpus/export.py) in a
# separate venv that has torch (CPU), so that torch is never a dependency of the project or of CI, which use
# the committed files. The export is deterministic: rerunning it rewrites the same bytes.
# Usage: scripts/corpus/setup.sh [OUT_DIR]   (default: tests/data/corpus)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-tests/data/corpus}"
VENV="${CORPUS_VENV:-benchmarks/work/corpus-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0 onnx==1.23.2 numpy
fi
"$VENV/bin/python" scripts/corpus/export.py "$OUT"
