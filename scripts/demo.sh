#!/usr/bin/env bash
# The embedded demo: SQLite, a worker, example workflows started every few seconds, and
# the dashboard on http://127.0.0.1:${DEMO_PORT:-8000}/ (log in as admin / admin).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset DATABASE_URL
PORT=${DEMO_PORT:-8000}
PY=.venv/bin/python

$PY manage.py migrate --verbosity 0
$PY manage.py demo_setup

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

$PY manage.py durable_worker --verbosity 1 & pids+=($!)
$PY manage.py demo_seed --every "${DEMO_EVERY:-15}" & pids+=($!)
echo "Durable demo: http://127.0.0.1:$PORT/  (admin / admin; operator / operator, not staff, at /durable/)"
# daphne serves HTTP and the dashboard's WebSockets; static files come from Django (DEBUG).
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" testproject.asgi:application & pids+=($!)
wait -n "${pids[@]}"
