#!/usr/bin/env bash
# Runs the test suite on the supported Python x Django combinations, each in a virtualenv
# of its own under var/venvs/, and prints one line per job.
#
#   scripts/matrix.sh                    the whole suite (scripts/test.sh) on every combination
#   scripts/matrix.sh --smoke            the smoke subset on every combination
#   scripts/matrix.sh [-j N] [--logs] JOB...
#                                        the jobs named, N at a time (default 1), printing
#                                        each job's whole log at the end with --logs:
#     full:3.13:6.1      the whole suite: lint, types, docs, pytest on SQLite and PostgreSQL
#     tests:3.11:5.2     the same without lint, types and docs (which no version changes)
#     smoke:3.12:6.0     the smoke subset ($SMOKE) on SQLite, with only the test extras
#     floors:3.11        the smoke subset on SQLite and PostgreSQL with the lowest version of
#                        every dependency pyproject.toml allows (.ci/floors.txt)
#     worker:3.12:6.1    a wheel (python -m build) installed with only durable[worker] runs
#                        durable_worker against PostgreSQL (scripts/worker_only.sh)
#   The whole suite in pieces, for CI to spread over its cores (they share one virtualenv
#   per combination; build it first with `venv`, then run the others in any order):
#     venv:3.13:6.1      the virtualenv (and the Mermaid parser tests/graph uses)
#     lint:3.13:6.1      lint, types, the import contract and the docs
#     sqlite:3.13:6.1    pytest on SQLite, but the browser tests (they run on PostgreSQL);
#                        :a and :b halves as for postgres
#     postgres:3.13:6.1  pytest on PostgreSQL; postgres:3.13:6.1:a and :b each half of it
#                        (the test directories before tests/queue, and the rest), to run
#                        side by side
#     inprocess:3.11:5.2 pytest on PostgreSQL without the tests that start worker processes
#                        or a browser (what a Django version can change runs in-process)
#     serial:3.13:6.1    the tests that restart shared servers (alone: nothing else may run)
#   WIDE_ON=3.13:6.1 runs the 100,000-item foreach test (minutes of a CPU) on that
#   combination only.
#
# Each job has its own PostgreSQL databases (DURABLE_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/durable, with a suffix per job) and SQLite files. A
# Python that this machine lacks (pyenv's or python3.X on PATH) skips its jobs, and fails
# them under CI.
set -euo pipefail
cd "$(dirname "$0")/.."

COMBINATIONS=(3.11:5.2 3.12:5.2 3.12:6.0 3.12:6.1 3.13:5.2 3.13:6.0 3.13:6.1)
SMOKE=${SMOKE:-tests/unit tests/config tests/tasks tests/tasks_conformance}
PG_BASE=${DURABLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/durable}

python_for() {  # 3.12 -> an interpreter of that version that runs, or nothing
  local candidate
  for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$1".*/bin/python \
    "$(command -v "python$1" || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c "" 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

test_half() {  # a | b | nothing -> the test directories of that half, or nothing (all)
  [ -n "$1" ] || return 0
  local dir
  for dir in tests/*/; do
    dir=${dir%/}
    [ "$(basename "$dir")" = support ] && continue
    if { [ "$1" = a ] && [[ "$dir" < tests/queue ]]; } ||
      { [ "$1" = b ] && ! [[ "$dir" < tests/queue ]]; }; then
      echo "$dir"
    fi
  done
}

run_job() {  # job -> its exit status; its output goes to var/logs/matrix/<job>.log
  local job=$1 kind py dj name venv python
  local part
  IFS=: read -r kind py dj part <<<"$job"
  name="$kind${part}-py$py${dj:+-dj$dj}"
  venv=$name
  case $kind in venv | lint | sqlite | postgres | inprocess | serial) venv="suite-py$py-dj$dj" ;; esac
  python=$(python_for "$py")
  if [ -z "$python" ]; then
    echo "no Python $py on this machine"
    [ -z "${CI:-}" ] && return 75  # skipped
    return 1
  fi
  local suffix; suffix=_${kind}${part}_py${py//./}${dj:+_dj${dj//./}}
  export VENV=var/venvs/$venv PYTHON=$python DJANGO=$dj
  export DURABLE_VAR_DIR=$PWD/var/run/$name
  export DURABLE_TEST_POSTGRES_URL=$PG_BASE$suffix
  export PYTHONPATH=$PWD
  if [ -n "${WIDE_ON:-}" ] && [ "$py:$dj" != "$WIDE_ON" ]; then
    export DURABLE_TEST_WIDE_ONCE=skip
  fi
  local serial; serial=$(cat scripts/serial-tests)
  case $kind in
    venv)
      scripts/bootstrap.sh
      scripts/node-deps.sh ;;
    lint)
      scripts/lint.sh ;;
    sqlite)
      # shellcheck disable=SC2046
      env -u DATABASE_URL "$VENV/bin/pytest" -p no:cacheprovider --durations=25 \
        --ignore="$serial" -m "not browser" $(test_half "$part") ;;
    postgres)
      # shellcheck disable=SC2046
      DATABASE_URL=$DURABLE_TEST_POSTGRES_URL "$VENV/bin/pytest" -p no:cacheprovider \
        --durations=25 --ignore="$serial" $(test_half "$part") ;;
    inprocess)
      DATABASE_URL=$DURABLE_TEST_POSTGRES_URL "$VENV/bin/pytest" -p no:cacheprovider \
        --durations=25 --ignore="$serial" -m "not e2e and not browser" ;;
    serial)
      # shellcheck disable=SC2086
      DATABASE_URL=$DURABLE_TEST_POSTGRES_URL "$VENV/bin/pytest" -p no:cacheprovider $serial ;;
    full)
      scripts/test.sh ;;
    tests)
      # The 100,000-item foreach (minutes of one CPU) runs in the full job alone.
      LINT=0 DURABLE_TEST_WIDE_ONCE=skip scripts/test.sh ;;
    smoke)
      EXTRAS=test,tasks scripts/bootstrap.sh
      # shellcheck disable=SC2086
      env -u DATABASE_URL "$VENV/bin/pytest" -q -p no:cacheprovider $SMOKE ;;
    floors)
      export DJANGO=""
      EXTRAS=test,tasks,web CONSTRAINTS=.ci/floors.txt scripts/bootstrap.sh
      "$VENV/bin/pip" freeze | grep -iE '^(django|psycopg|django-htmx|django-filter|croniter|channels|daphne|channels-redis|django-tasks)=='
      # shellcheck disable=SC2086
      env -u DATABASE_URL "$VENV/bin/pytest" -q -p no:cacheprovider $SMOKE
      # shellcheck disable=SC2086
      DATABASE_URL=$DURABLE_TEST_POSTGRES_URL "$VENV/bin/pytest" -q -p no:cacheprovider $SMOKE ;;
    worker)
      scripts/worker_only.sh ;;
  esac
}

# One job, in a process of its own (so that `set -e` holds inside it): its exit status.
if [ "${1:-}" = --job ]; then
  run_job "$2"
  exit 0
fi

parallel=1
logs=""
jobs=()
while [ $# -gt 0 ]; do
  case $1 in
    -j) parallel=$2; shift 2 ;;
    --logs) logs=1; shift ;;
    --smoke) for c in "${COMBINATIONS[@]}"; do jobs+=("smoke:$c"); done; shift ;;
    full:* | tests:* | smoke:* | floors:* | worker:* | venv:* | lint:* | sqlite:* | postgres:* | inprocess:* | serial:*)
      jobs+=("$1"); shift ;;
    *) echo "scripts/matrix.sh: unknown argument $1 (see the comment at its top)" >&2; exit 2 ;;
  esac
done
if [ ${#jobs[@]} -eq 0 ]; then
  for c in "${COMBINATIONS[@]}"; do jobs+=("full:$c"); done
fi

mkdir -p var/logs/matrix
running=()
start() {
  local job=$1 log="var/logs/matrix/${1//:/_}.log"
  echo "== $job (log: $log)"
  (
    code=0
    "$0" --job "$job" >"$log" 2>&1 || code=$?
    echo "$code" >"$log.status"
  ) &
  running+=($!)
}
for job in "${jobs[@]}"; do
  while [ ${#running[@]} -ge "$parallel" ]; do
    wait -n || true
    alive=()
    for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    running=("${alive[@]}")
  done
  start "$job"
done
wait || true

if [ -n "$logs" ]; then
  for job in "${jobs[@]}"; do
    echo "== $job: its log"
    cat "var/logs/matrix/${job//:/_}.log"
  done
fi

failed=0
echo "== matrix"
for job in "${jobs[@]}"; do
  log="var/logs/matrix/${job//:/_}.log"
  code=$(cat "$log.status" 2>/dev/null || echo 1)
  # The closing pytest lines of the job (one for smoke, one per database otherwise).
  summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* =+$|(passed|failed)( in|,)|^worker-only install' "$log" \
    | tail -3 | tr '\n' ';' || true)
  case $code in
    0) echo "ok       $job  $summary" ;;
    75) echo "skipped  $job  ($(tail -1 "$log"))" ;;
    *) echo "FAILED   $job  $summary (log: $log)"; failed=1 ;;
  esac
done
# What failed, last, where a reader of a long log looks first.
for job in "${jobs[@]}"; do
  log="var/logs/matrix/${job//:/_}.log"
  if [ "$(cat "$log.status" 2>/dev/null || echo 1)" != 0 ] && [ "$(cat "$log.status" 2>/dev/null)" != 75 ]; then
    echo "== $job: its failures"
    grep -E '^(FAILED|ERROR) |^E  ' "$log" | head -60 || true
  fi
done
if [ "$failed" -ne 0 ] && [ -z "$logs" ]; then
  for job in "${jobs[@]}"; do
    log="var/logs/matrix/${job//:/_}.log"
    if [ "$(cat "$log.status" 2>/dev/null || echo 1)" != 0 ] && [ "$(cat "$log.status")" != 75 ]; then
      echo "== $job: the end of its log"
      tail -60 "$log"
    fi
  done
fi
exit "$failed"
