#!/usr/bin/env bash
# Installs the peers bench/run.py --peers compares Durable with into their own virtualenv,
# bench/.venv-peers (git-ignored): they are not dependencies of the project. PyPI only.
#
#     bench/setup_peers.sh            # creates or updates bench/.venv-peers
#     PYTHON=python3.12 bench/setup_peers.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
# gevent: the io scenario runs Celery with `--pool gevent` as well as `--pool threads`.
"$venv/bin/pip" install --quiet --upgrade procrastinate dbos "celery[redis]" "psycopg[binary]" gevent
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
print("peers installed:", ", ".join(f"{p} {version(p)}" for p in ("procrastinate", "dbos", "celery", "redis", "psycopg", "gevent")))
PY
