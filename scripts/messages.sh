#!/usr/bin/env bash
# Regenerates Durable's English catalogue, durable/locale/en/LC_MESSAGES/django.po, from
# the strings marked for translation in durable/ (Python code and templates). Run it after
# marking, changing or removing a string; tests/unit/test_locale.py fails until then.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
root=$PWD
cd durable
PYTHONPATH="$root" DJANGO_SETTINGS_MODULE=testproject.settings \
  "$root/$VENV/bin/django-admin" makemessages --locale en --domain django \
  --add-location file --no-obsolete --ignore "migrations/*"
