"""Publish from a separate process, for the cross-process tests.

python -m tests.bus.publisher BUS_PATH OPTIONS_JSON TOPIC MESSAGES_JSON CHANNEL_LAYERS_JSON
"""

from __future__ import annotations

import json
import sys

import django


def main(path: str, options: str, topic: str, messages: str, channel_layers: str) -> None:
    django.setup()
    from django.conf import settings
    from django.utils.module_loading import import_string

    settings.CHANNEL_LAYERS = json.loads(channel_layers)
    bus = import_string(path)(options=json.loads(options))
    try:
        for message in json.loads(messages):
            bus.publish(topic, message)
    finally:
        bus.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
