from __future__ import annotations

import pytest
from django.test import override_settings

from durable.conf import DATABASE_QUEUE, DEFAULTS, POSTGRES_QUEUE, durable_settings
from durable.engine.adapters import queue_adapter
from durable.queue.database import DatabaseQueue


def test_defaults_apply_with_no_durable_setting_at_all(settings):
    del settings.DURABLE
    # pytest-django deletes without sending setting_changed, so drop the cache by hand.
    durable_settings.reload()
    assert durable_settings.QUEUES == {"default": {"concurrency": 10}}
    assert durable_settings.LEASE_SECONDS == 30
    assert durable_settings.WORKFLOW_MODULES == []
    assert DEFAULTS["RETENTION"] == durable_settings.RETENTION


def test_user_values_override_defaults_key_by_key():
    with override_settings(DURABLE={"LEASE_SECONDS": 5}):
        assert durable_settings.LEASE_SECONDS == 5
        assert durable_settings.QUEUES == {"default": {"concurrency": 10}}


def test_override_settings_is_seen_and_reverted():
    before = durable_settings.LEASE_SECONDS
    with override_settings(DURABLE={"LEASE_SECONDS": 7}):
        assert durable_settings.LEASE_SECONDS == 7
    assert before == durable_settings.LEASE_SECONDS


def test_queue_adapter_defaults_to_the_database_vendor(db):
    from django.db import connection

    expected = POSTGRES_QUEUE if connection.vendor == "postgresql" else DATABASE_QUEUE
    assert durable_settings.queue_adapter_path == expected


def test_queue_adapter_import_string_is_resolved_once_and_reset_on_change():
    path = "durable.queue.database.DatabaseQueue"
    with override_settings(DURABLE={"QUEUE_ADAPTER": path}):
        assert durable_settings.queue_adapter_class is DatabaseQueue
        first = queue_adapter()
        assert queue_adapter() is first
    assert queue_adapter() is not first


def test_unknown_setting_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        durable_settings.NOT_A_SETTING  # noqa: B018


def test_every_setting_has_one_default_and_one_type() -> None:
    from typing import get_type_hints

    from durable.conf import DEFAULTS, DurableSettings

    typed = {name for name in get_type_hints(DurableSettings) if name.isupper()}
    assert typed == set(DEFAULTS)
