"""External checkers for the exports: Graphviz `dot` and Mermaid's own parser (Node).

Without CI a missing tool skips the test; under CI (env CI set) it fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required under CI")
    pytest.skip(f"{what} is not installed")


def dot_binary() -> str:
    path = shutil.which("dot")
    if path is None:
        _missing("Graphviz (dot)")
    assert path is not None
    return path


def mermaid_parser() -> list[str]:
    """The command that parses Mermaid files, installing the parser on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing("Node.js and npm")
    assert node is not None
    assert npm is not None
    if not (NODE_DIR / "node_modules" / "mermaid").is_dir():
        subprocess.run(
            [npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=280,
        )
    return [node, str(NODE_DIR / "parse.mjs")]
