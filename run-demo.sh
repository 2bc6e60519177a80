#!/usr/bin/env bash
# One command on a fresh machine: install, build the demo bundle (seeded MobileNetV2, nothing downloaded
# but Python packages) and serve the demo at http://127.0.0.1:8000/demos/
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup-env.sh
exec package-for-web demo --dist dist "$@"
