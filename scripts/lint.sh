#!/usr/bin/env bash
# The checks that do not depend on the Python or Django version: ruff, mypy, the import
# contract and the docs. VENV chooses the virtualenv (default .venv, set up by
# scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy" durable
echo "== import contract"
"$VENV/bin/lint-imports" --no-cache
echo "== docs (mkdocs build --strict)"
"$VENV/bin/mkdocs" build --strict --quiet
