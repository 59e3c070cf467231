"""DATABASE_URL -> a Django DATABASES entry (postgres:// and sqlite:/// only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


def parse(url: str, base_dir: Path) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        name = Path(path[1:]) if path.startswith("//") else base_dir / path.lstrip("/")
        return sqlite(name)
    if parsed.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "durable",
            "USER": unquote(parsed.username or "postgres"),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "127.0.0.1",
            "PORT": str(parsed.port or 5432),
            "TEST": {"NAME": "test_" + (unquote(parsed.path.lstrip("/")) or "durable")},
            "OPTIONS": _postgres_options(parsed.query),
        }
    raise ValueError(f"unsupported DATABASE_URL scheme {parsed.scheme!r}")


def _postgres_options(query: str) -> dict[str, Any]:
    """`?prepare_threshold=N` lets psycopg prepare statements (Durable prepares its hot-path
    statements at once when it is set; Django leaves them off, for connection poolers)."""
    options: dict[str, Any] = {}
    for key, values in parse_qs(query).items():
        if key != "prepare_threshold":
            raise ValueError(f"unsupported DATABASE_URL option {key!r}")
        options[key] = int(values[-1])
    return options


def sqlite(name: Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(name),
        # IMMEDIATE transactions and WAL let a worker and the web server write side by side.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # A file, not :memory:, so worker processes started by tests share it.
        "TEST": {"NAME": str(name.with_name("test_" + name.name))},
    }
