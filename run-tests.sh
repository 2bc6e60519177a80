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

# onnxruntime-web for the browser benchmark (benchmarks/run.py, tests/test_benchmarks.py): an npm dev-only
# dependency, installed from benchmarks/package-lock.json unless the pinned version is already there
ort_web() { node -p "try { require('./benchmarks/$1').$2 } catch { '' }"; }
if [ "$(ort_web node_modules/onnxruntime-web/package.json version)" != \
     "$(ort_web package.json "devDependencies['onnxruntime-web']")" ]; then
  npm ci --prefix benchmarks --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
fi

# typescript and vite for tests/test_npm_package.py (type-checks web/index.d.ts, bundles an app using the npm
# package): the same, from tests/npm/package-lock.json unless every pinned version is there
if [ "$(node -p "const d = require('./tests/npm/package.json').devDependencies; Object.keys(d).every((n) => {
       try { return require('./tests/npm/node_modules/' + n + '/package.json').version === d[n] } catch { return false } })")" \
     != true ]; then
  npm ci --prefix tests/npm --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
fi

ruff check wasm_runtime server tests benchmarks
exec python -m pytest "$@"
