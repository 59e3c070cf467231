#!/usr/bin/env bash
# The whole test suite: lint, types, the import contract, the docs, then pytest on SQLite
# and on PostgreSQL (DURABLE_TEST_POSTGRES_URL, default the local server). Extra arguments
# go to both pytest runs, e.g. scripts/test.sh -k retry. VENV, PYTHON and DJANGO choose the
# virtualenv, as for scripts/bootstrap.sh (scripts/matrix.sh runs every combination).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
VENV=${VENV:-.venv}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PG_URL=${DURABLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/durable}
COVERAGE=(--cov=durable --cov-report=term:skip-covered)

echo "== $("$VENV/bin/python" -c 'import sys, django; print(f"Python {sys.version.split()[0]}, Django {django.__version__}")')"
# LINT=0 skips the checks that do not depend on the Python or Django version (scripts/
# matrix.sh's `tests` jobs: CI lints once).
if [ "${LINT:-1}" != 0 ]; then
  VENV=$VENV scripts/lint.sh
fi

if [ $# -gt 0 ]; then
  echo "== pytest on SQLite"
  env -u DATABASE_URL "$VENV/bin/pytest" "$@"
  echo "== pytest on PostgreSQL ($PG_URL)"
  DATABASE_URL="$PG_URL" "$VENV/bin/pytest" "${COVERAGE[@]}" "$@"
  exit 0
fi

# The whole suite: the SQLite and PostgreSQL runs go side by side (most of their time is
# spent waiting on worker processes and servers, so two fit on two cores), which keeps CI
# well inside its time limit. Tests that restart a shared server (RabbitMQ) would disturb
# the other run: they go alone, afterwards.
SERIAL=$(cat scripts/serial-tests)
# Each virtualenv's logs apart, so that scripts/matrix.sh can run several.
LOGS=var/logs/$(basename "$VENV")
mkdir -p "$LOGS"
scripts/node-deps.sh
echo "== pytest on SQLite and on PostgreSQL ($PG_URL), side by side"
# The browser tests drive the dashboard once, in the PostgreSQL run (the production
# database; SQLite's web views are covered by the other web tests).
env -u DATABASE_URL "$VENV/bin/pytest" --ignore="$SERIAL" -m "not browser" \
  >"$LOGS/pytest-sqlite.log" 2>&1 &
sqlite_pid=$!
set +e
DATABASE_URL="$PG_URL" "$VENV/bin/pytest" --ignore="$SERIAL" "${COVERAGE[@]}" \
  >"$LOGS/pytest-postgres.log" 2>&1
postgres_status=$?
wait "$sqlite_pid"
sqlite_status=$?
set -e
echo "== pytest on SQLite (exit $sqlite_status)"
cat "$LOGS/pytest-sqlite.log"
echo "== pytest on PostgreSQL (exit $postgres_status)"
cat "$LOGS/pytest-postgres.log"
echo "== pytest: shared servers restarted under running workers (PostgreSQL)"
DATABASE_URL="$PG_URL" "$VENV/bin/pytest" "$SERIAL"
[ "$sqlite_status" -eq 0 ] && [ "$postgres_status" -eq 0 ]
