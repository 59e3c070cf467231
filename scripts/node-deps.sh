#!/usr/bin/env bash
# The Mermaid parser tests/graph checks the graph exports with: installed once, before any
# pytest run (parallel runs would each install it on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null && [ ! -d tests/graph/node/node_modules/mermaid ]; then
  npm ci --prefix tests/graph/node --no-audit --no-fund >/dev/null
fi
