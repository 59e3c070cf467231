"""Start a mix of example workflows, and keep starting them every few seconds with --every."""

from __future__ import annotations

import random
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

import durable

ITEMS = [
    {"sku": "book", "price": 20, "qty": 2},
    {"sku": "lamp", "price": 45},
    {"sku": "laptop", "price": 1400},
]


def start_examples() -> list[str]:
    return [
        durable.start(
            "process_order",
            {
                "items": random.sample(ITEMS, 2),
                "country": random.choice(["US", "DE"]),
                "flaky_payment": random.random() < 0.5,
            },
        ),
        durable.start("book_trip", {"car_available": random.random() < 0.6}),
        durable.start("send_newsletter", {"n": random.randint(3, 8)}),
        durable.start(
            "import_catalog", {"suppliers": random.sample(["acme", "globex", "initech"], 2)}
        ),
        # Waits for a person: a form, then a choice (answer them on the execution's page).
        durable.start("expense_approval", {"employee": random.choice(["Ada", "Grace", "Linus"])}),
        # Fails, plainly: retry it from the dashboard to see it fail again.
        durable.start("nightly_report"),
        # Runs for about 45 seconds, its progress live on the list and in the graph.
        durable.start("rebuild_search_index", {"documents": random.randint(300, 900)}),
    ]


class Command(BaseCommand):
    help = "Start example workflows for the demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            help="Keep starting a batch every N seconds (0: once).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            ids = start_examples()
            self.stdout.write(f"started {', '.join(ids)}")
            if not options["every"]:
                return
            time.sleep(options["every"])
