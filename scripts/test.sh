#!/usr/bin/env bash
# The whole test suite: lint, types, the import contract, then pytest on SQLite and on
# PostgreSQL (DURABLE_TEST_POSTGRES_URL, default the local server). Extra arguments go to
# both pytest runs, e.g. scripts/test.sh -k retry
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PG_URL=${DURABLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/durable}
COVERAGE=(--cov=durable --cov-report=term:skip-covered)

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy durable
echo "== import contract"
.venv/bin/lint-imports --no-cache

if [ $# -gt 0 ]; then
  echo "== pytest on SQLite"
  env -u DATABASE_URL .venv/bin/pytest "$@"
  echo "== pytest on PostgreSQL ($PG_URL)"
  DATABASE_URL="$PG_URL" .venv/bin/pytest "${COVERAGE[@]}" "$@"
  exit 0
fi

# The whole suite: the SQLite and PostgreSQL runs go side by side (most of their time is
# spent waiting on worker processes and servers, so two fit on two cores), which keeps CI
# well inside its time limit. Tests that restart a shared server (RabbitMQ) would disturb
# the other run: they go alone, afterwards.
SERIAL=tests/queue/test_broker_restarts.py
mkdir -p var
# Both runs would install the Mermaid parser on first use: install it once, before them.
if command -v npm >/dev/null && [ ! -d tests/graph/node/node_modules/mermaid ]; then
  npm ci --prefix tests/graph/node --no-audit --no-fund >/dev/null
fi
echo "== pytest on SQLite and on PostgreSQL ($PG_URL), side by side"
env -u DATABASE_URL .venv/bin/pytest --ignore="$SERIAL" >var/pytest-sqlite.log 2>&1 &
sqlite_pid=$!
set +e
DATABASE_URL="$PG_URL" .venv/bin/pytest --ignore="$SERIAL" "${COVERAGE[@]}" \
  >var/pytest-postgres.log 2>&1
postgres_status=$?
wait "$sqlite_pid"
sqlite_status=$?
set -e
echo "== pytest on SQLite (exit $sqlite_status)"
cat var/pytest-sqlite.log
echo "== pytest on PostgreSQL (exit $postgres_status)"
cat var/pytest-postgres.log
echo "== pytest: shared servers restarted under running workers (PostgreSQL)"
DATABASE_URL="$PG_URL" .venv/bin/pytest "$SERIAL"
[ "$sqlite_status" -eq 0 ] && [ "$postgres_status" -eq 0 ]
