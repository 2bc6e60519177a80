#!/usr/bin/env bash
# One command on a fresh machine: install everything (Python packages, Debian Chromium for the browser
# tests) and run lint + all tests. Extra arguments go to pytest (e.g. -m "not browser").
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup-env.sh test

if [ ! -x /usr/bin/chromium ]; then
  # Playwright cannot download its own browsers here; Debian's Chromium is what the tests launch
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

ruff check wasm_runtime server tests benchmarks
exec python -m pytest "$@"
