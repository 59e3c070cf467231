"""Durable's English catalogue compiles, and lists every string marked for translation
(scripts/messages.sh regenerates it)."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "durable" / "locale" / "en" / "LC_MESSAGES" / "django.po"

needs_gettext = pytest.mark.skipif(
    shutil.which("msgfmt") is None and not os.environ.get("CI"),
    reason="GNU gettext (msgfmt) is not installed; CI installs it",
)


def msgids(po: Path) -> set[str]:
    """The catalogue's message ids, each joined from its quoted lines."""
    ids, current = set(), None
    for line in po.read_text(encoding="utf-8").splitlines():
        if line.startswith("msgid "):
            current = [line[len("msgid ") :]]
        elif current is not None and line.startswith('"'):
            current.append(line)
        elif current is not None:
            ids.add("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', "".join(current))))
            current = None
    return ids - {""}


@needs_gettext
def test_the_english_catalogue_compiles(tmp_path: Path) -> None:
    compiled = tmp_path / "django.mo"
    result = subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(CATALOGUE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with compiled.open("rb") as mo:
        catalogue = gettext.GNUTranslations(mo)
    assert catalogue.info()["language"] == "en"


@needs_gettext
def test_the_catalogue_lists_every_marked_string(tmp_path: Path) -> None:
    package = tmp_path / "durable"
    shutil.copytree(ROOT / "durable", package, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [
            # Not `python -m django`: the package's directory would shadow the standard
            # library (durable/time.py) on sys.path.
            str(Path(sys.executable).parent / "django-admin"),
            "makemessages",
            "--locale",
            "en",
            "--no-obsolete",
            "--ignore",
            "migrations/*",
        ],
        cwd=package,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fresh = msgids(package / "locale" / "en" / "LC_MESSAGES" / "django.po")
    assert "DURABLE must be a dict." in fresh
    assert msgids(CATALOGUE) == fresh, "run scripts/messages.sh"
