#!/usr/bin/env bash
# A worker-only deployment, as a user makes it: build the wheel (python -m build), install it
# into a fresh virtualenv with only the `worker` extra, check that neither daphne nor
# channels(-redis) came along, then run `durable_worker` against PostgreSQL and wait for it
# to finish a workflow (and, on Django 6, a task of Django's Tasks framework).
#
#   VENV    the fresh virtualenv (default var/venvs/worker-only; it is recreated)
#   PYTHON  its interpreter (default python3); DJANGO a release series to pin, e.g. 6.1
#   DURABLE_TEST_POSTGRES_URL  the database to create, use and drop
#     (default postgres://postgres@127.0.0.1:5432/durable_worker_only)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
VENV=$(realpath -m "${VENV:-var/venvs/worker-only}")
PYTHON=${PYTHON:-python3}
DJANGO=${DJANGO:-}
DB_URL=${DURABLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/durable_worker_only}
unset PYTHONPATH  # the checkout must not stand in for the wheel

echo "== build the wheel"
builder=var/venvs/build-tool
[ -x "$builder/bin/python" ] || "$PYTHON" -m venv "$builder"
"$builder/bin/pip" install --quiet --upgrade build
rm -rf var/dist
"$builder/bin/python" -m build --wheel --outdir var/dist . >var/dist.log 2>&1 || {
  cat var/dist.log
  exit 1
}
wheel=$root/$(ls var/dist/durable-*.whl)
echo "$wheel"

# A project of its own, away from the checkout: there, its durable/ and durable.egg-info
# would stand in for the wheel.
project=$root/var/run/$(basename "$VENV")/project
rm -rf "$project"
mkdir -p "$project"
cp -r testproject manage.py "$project/"
cd "$project"

echo "== install it with only the worker extra"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$wheel[worker]" ${DJANGO:+"Django==$DJANGO.*"}
"$VENV/bin/pip" list --format=freeze
"$VENV/bin/python" - <<'EOF'
import importlib.util

import durable

assert "site-packages" in durable.__file__, durable.__file__
present = [m for m in ("daphne", "channels", "channels_redis", "twisted") if importlib.util.find_spec(m)]
assert not present, f"a worker-only install pulled in {present}"
EOF
cat >"$project/smoke_workflows.py" <<'EOF'
from durable import Workflow, step


class WorkerOnlySmoke(Workflow):
    @step
    def first(self, ctx):
        ctx.put("first", 1)

    @step
    async def second(self, ctx):
        return ctx["first"] + 1
EOF
cat >"$project/smoke_tasks.py" <<'EOF'
from django.tasks import task


@task()
def add(a, b):
    return a + b
EOF

export PYTHONPATH=$project DJANGO_SETTINGS_MODULE=testproject.settings
export DATABASE_URL=$DB_URL DURABLE_WORKFLOW_MODULES=smoke_workflows
export DURABLE_VAR_DIR=$project/var
unset REDIS_URL DURABLE_QUEUE_ADAPTER
py=$VENV/bin/python

database() {  # create | drop
  "$py" - "$1" <<'EOF'
import os, sys
from urllib.parse import urlsplit

import psycopg

url = urlsplit(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if sys.argv[1] == "create":
        conn.execute(f'CREATE DATABASE "{name}"')
EOF
}

worker=""
cleanup() {
  if [ -n "$worker" ]; then
    kill -TERM "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
  fi
  database drop || true
}
trap cleanup EXIT

echo "== durable_worker against PostgreSQL ($DB_URL)"
database create
"$py" manage.py migrate --verbosity 0
"$py" manage.py durable_worker --verbosity 1 >"$project/worker.log" 2>&1 &
worker=$!
"$py" manage.py shell --no-imports -c '
import sys, time

import django
import durable
from durable.testing import assert_workflow_completed

wid = durable.start("worker_only_smoke", {})
execution = assert_workflow_completed(wid, timeout=60)
print("workflow", execution.status, execution.result)
assert execution.result == 2, execution.result
if django.VERSION >= (6, 0):
    from smoke_tasks import add

    result = add.enqueue(2, 3)
    deadline = time.monotonic() + 60
    while not result.is_finished and time.monotonic() < deadline:
        time.sleep(0.2)
        result.refresh()
    print("task", result.status, result.return_value)
    assert result.return_value == 5, (result.status, result.errors)
' || {
  echo "== worker log"
  cat "$project/worker.log"
  exit 1
}
echo "worker-only install: ok"
