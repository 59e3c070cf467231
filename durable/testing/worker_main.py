"""`python -m durable.testing.worker_main [durable_worker options]`: a worker process for a
test run, pointed at the test databases.

The test process cannot hand its settings over, and a project's settings rarely read the
database name from the environment. So this entry point loads the project's settings (as
`DJANGO_SETTINGS_MODULE` names them), replaces the `NAME` of each database listed in
`DURABLE_TEST_DATABASES` (a JSON object: alias -> test database name) before Django
connects, and runs `durable_worker`.
"""

from __future__ import annotations

import json
import os
import sys

TEST_DATABASES_ENV = "DURABLE_TEST_DATABASES"


def main(argv: list[str]) -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    names: dict[str, str] = json.loads(os.environ.get(TEST_DATABASES_ENV) or "{}")
    for alias, name in names.items():
        # Connections are made lazily from this dict, so the change takes effect.
        settings.DATABASES[alias]["NAME"] = name
    django.setup()
    call_command("durable_worker", *argv)


if __name__ == "__main__":
    main(sys.argv[1:])
