#!/usr/bin/env bash
# Creates a virtualenv and installs Durable with every extra and the dev tools; re-installs
# only when pyproject.toml (or the choice below) changed. Used by scripts/demo.sh,
# scripts/test.sh and scripts/matrix.sh.
#
#   VENV    the virtualenv's directory (default .venv)
#   PYTHON  the interpreter that creates it (default python3)
#   DJANGO  a Django release series to pin, e.g. 6.1 (default: the newest pip allows)
#   EXTRAS  the extras to install (default dev: every extra and the tools)
#   CONSTRAINTS  a pip constraints file (the floors job pins the lowest allowed versions)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DJANGO=${DJANGO:-}
EXTRAS=${EXTRAS:-dev}
CONSTRAINTS=${CONSTRAINTS:-}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.durable-installed"
wanted=$( (cat pyproject.toml ${CONSTRAINTS:+"$CONSTRAINTS"}; echo "$DJANGO $EXTRAS") \
  | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  "$VENV/bin/pip" install --quiet --upgrade pip
  # --no-compile: modules are compiled when first imported (most never are in a test run).
  "$VENV/bin/pip" install --quiet --no-compile -e ".[$EXTRAS]" ${DJANGO:+"Django==$DJANGO.*"} \
    ${CONSTRAINTS:+--constraint "$CONSTRAINTS"}
  echo "$wanted" > "$stamp"
fi
