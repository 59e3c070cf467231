#!/usr/bin/env bash
# The whole test suite: lint, types, the import contract, then pytest on SQLite and on
# PostgreSQL (DURABLE_TEST_POSTGRES_URL, default the local server). Extra arguments go to
# both pytest runs, e.g. scripts/test.sh -k retry
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PG_URL=${DURABLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/durable}

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy durable
echo "== import contract"
.venv/bin/lint-imports --no-cache
echo "== pytest on SQLite"
env -u DATABASE_URL .venv/bin/pytest "$@"
echo "== pytest on PostgreSQL ($PG_URL)"
DATABASE_URL="$PG_URL" .venv/bin/pytest --cov=durable --cov-report=term:skip-covered "$@"
