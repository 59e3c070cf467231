"""Every system check id fires for the misconfiguration it names, and only then."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from durable import Workflow, step
from durable.conf import durable_settings
from durable.dsl import registry


def durable_ids(**kwargs) -> set[str]:
    return {m.id for m in run_checks(tags=["durable"], **kwargs) if m.id.startswith("durable.")}


def test_the_test_project_passes_every_check():
    assert durable_ids() == set()


def test_no_durable_setting_at_all_passes(settings):
    del settings.DURABLE
    durable_settings.reload()  # pytest-django's delattr sends no setting_changed
    assert durable_ids() - {"durable.E004"} == set()


def test_durable_not_a_dict_is_e001():
    with override_settings(DURABLE=["QUEUES"]):
        assert "durable.E001" in durable_ids()


def test_unknown_key_is_w001_naming_the_key():
    with override_settings(DURABLE={"QUEUS": {}}):
        messages = [m for m in run_checks(tags=["durable"]) if m.id == "durable.W001"]
    assert messages
    assert "QUEUS" in messages[0].msg


@pytest.mark.parametrize(
    "adapter",
    ["durable.queue.nope.Missing", "durable.conf.DurableSettings", "not a path"],
)
def test_unknown_or_wrong_queue_adapter_is_e002(adapter):
    with override_settings(DURABLE={"QUEUE_ADAPTER": adapter}):
        assert "durable.E002" in durable_ids()


@pytest.mark.parametrize(
    "queues",
    [{}, [], {"default": {"concurrency": 0}}, {"default": {"concurrency": "4"}}, {"default": 3}],
)
def test_malformed_queues_are_e003(queues):
    with override_settings(DURABLE={"QUEUES": queues}):
        assert "durable.E003" in durable_ids()


def test_queue_used_by_a_workflow_but_not_configured_is_e004_naming_both():
    class UsesReports(Workflow):
        name = "checks_uses_reports"

        @step(queue="reports")
        def build(self, ctx):
            pass

    try:
        messages = [m for m in run_checks(tags=["durable"]) if m.id == "durable.E004"]
        assert any("checks_uses_reports" in m.msg and "reports" in m.msg for m in messages)
    finally:
        registry.unregister("checks_uses_reports")
    assert "durable.E004" not in durable_ids()


def test_invalid_workflow_module_is_e005(monkeypatch):
    monkeypatch.setattr(registry, "import_errors", ["app.workflows: workflow 'x' is invalid"])
    assert "durable.E005" in durable_ids()


@pytest.mark.parametrize("key", ["LEASE_SECONDS", "POLL_INTERVAL", "MAX_LEASE_EXPIRIES"])
@pytest.mark.parametrize("value", [0, -1, "30", True])
def test_non_positive_numbers_are_e006(key, value):
    with override_settings(DURABLE={key: value}):
        assert "durable.E006" in durable_ids()


def test_workflow_modules_must_be_dotted_paths_e007():
    with override_settings(DURABLE={"WORKFLOW_MODULES": "app.workflows"}):
        assert "durable.E007" in durable_ids()


def test_unknown_database_alias_is_e008():
    with override_settings(DURABLE={"DATABASE": "other"}):
        assert "durable.E008" in durable_ids()


@pytest.mark.parametrize("key", ["QUEUE_OPTIONS", "MESSAGE_BUS_OPTIONS", "SCHEDULER", "RETENTION"])
def test_option_blocks_must_be_dicts_e009(key):
    with override_settings(DURABLE={key: "nope"}):
        assert "durable.E009" in durable_ids()


def test_sqlite_without_immediate_transactions_is_w002(monkeypatch):
    # Patch the entry in place: overriding DATABASES wholesale is unsupported in tests.
    config = django_settings.DATABASES["default"]
    monkeypatch.setitem(config, "ENGINE", "django.db.backends.sqlite3")
    monkeypatch.setitem(config, "OPTIONS", {})
    assert "durable.W002" in durable_ids()


def test_queue_adapter_whose_client_is_missing_is_e014_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pika", None)  # what `import pika` sees when absent
    monkeypatch.delitem(sys.modules, "tests.config.pika_queue", raising=False)
    with override_settings(DURABLE={"QUEUE_ADAPTER": "tests.config.pika_queue.PikaQueue"}):
        messages = [m for m in run_checks(tags=["durable"]) if m.id == "durable.E014"]
    assert messages
    assert messages[0].hint == "pip install durable[rabbitmq]"


@pytest.mark.parametrize(
    "retention",
    [{"COMPLETED_DAYS": -1}, {"FAILED_DAYS": "90"}, {"INTERVAL_SECONDS": 0}],
)
def test_bad_retention_values_are_e015(retention):
    with override_settings(DURABLE={"RETENTION": retention}):
        assert "durable.E015" in durable_ids()


def test_retention_none_keeps_forever_and_passes():
    with override_settings(DURABLE={"RETENTION": {"COMPLETED_DAYS": None, "FAILED_DAYS": 7}}):
        assert "durable.E015" not in durable_ids()


@pytest.mark.django_db(databases="__all__")
def test_manage_py_check_runs_no_sql_query():
    # Django 6.1 hands every check every database alias; only `check --database` may query.
    # Django's own JSONField check asks SQLite once per connection whether it has JSON1 (a
    # cached feature probe, not a check's query): ask before counting.
    for alias in connections:
        assert connections[alias].features.supports_json_field
    with ExitStack() as stack:
        captured = [stack.enter_context(CaptureQueriesContext(connections[a])) for a in connections]
        call_command("check", stdout=StringIO())
    assert [q["sql"] for c in captured for q in c.captured_queries] == [], "check ran SQL"
