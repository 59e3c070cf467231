"""`python manage.py durable_graph <workflow> [--format F] [--execution ID] [--output FILE]`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable import graph
from durable.management import cli


def _cytoscape(g: dict[str, Any]) -> str:
    return json.dumps(graph.to_cytoscape(g), indent=2, default=str)


def _json(g: dict[str, Any]) -> str:
    return json.dumps(g, indent=2, default=str)


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "dot": graph.to_dot,
    "mermaid": graph.to_mermaid,
    "svg": graph.to_svg,
    "cytoscape": _cytoscape,
    "json": _json,
}


class Command(BaseCommand):
    help = (
        "Print a workflow's graph (optionally with one execution's state) as DOT, Mermaid, "
        "Cytoscape.js JSON, SVG or the graph's own JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="A registered workflow name.")
        parser.add_argument("--format", default="dot", help=f"One of: {', '.join(FORMATS)}.")
        parser.add_argument(
            "--execution", metavar="WORKFLOW_ID", help="Colour the nodes by this execution."
        )
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        render = FORMATS.get(options["format"])
        if render is None:
            raise CommandError(
                f"unknown format {options['format']!r}; expected one of {', '.join(FORMATS)}"
            )
        with cli.api_errors():
            if options["execution"]:
                g = graph.with_execution(options["workflow"], options["execution"])
            else:
                g = graph.generate(options["workflow"])
        text = render(g)
        if not text.endswith("\n"):
            text += "\n"
        if options["output"]:
            try:
                Path(options["output"]).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {options['output']}: {exc}") from exc
        else:
            self.stdout.write(text, ending="")
