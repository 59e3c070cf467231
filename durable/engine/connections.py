"""The database connections of the engine's own threads."""

from __future__ import annotations

from django.db import connections


def close_stale_connections() -> None:
    """Close this thread's connections that broke (or were left mid-transaction), and keep
    the others open whatever CONN_MAX_AGE says: a worker thread runs step after step, and a
    new connection per step would cost more than most steps. Connections inside an atomic
    block are the caller's (a test's transaction, inline runs) and are left alone."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block or connection.connection is None:
            continue
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
            connection.close()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()
