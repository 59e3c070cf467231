"""DATABASE_URL -> a Django DATABASES entry (postgres:// and sqlite:/// only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


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
        }
    raise ValueError(f"unsupported DATABASE_URL scheme {parsed.scheme!r}")


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
