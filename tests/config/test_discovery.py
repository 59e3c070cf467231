from __future__ import annotations

import sys

from django.core.checks import run_checks
from django.test import override_settings

from durable.discovery import autodiscover
from durable.dsl import registry


def test_each_installed_apps_workflows_module_is_imported():
    autodiscover()
    assert registry.get("process_order").workflow_class.__module__ == "testproject.demo.workflows"


def test_modules_in_workflow_modules_setting_are_imported():
    sys.modules.pop("tests.config.extra_workflows", None)
    registry.unregister("discovery_extra_module")
    with override_settings(DURABLE={"WORKFLOW_MODULES": ["tests.config.extra_workflows"]}):
        autodiscover()
    try:
        assert registry.get("discovery_extra_module").name == "discovery_extra_module"
    finally:
        registry.unregister("discovery_extra_module")


def test_an_invalid_workflow_module_is_reported_by_checks_not_raised():
    sys.modules.pop("tests.config.broken_workflows", None)
    modules = ["tests.config.broken_workflows", "tests.config.does_not_exist"]
    try:
        with override_settings(DURABLE={"WORKFLOW_MODULES": modules}):
            autodiscover()  # must not raise
            errors = [m for m in run_checks(tags=["durable"]) if m.id == "durable.E005"]
        text = "\n".join(m.msg for m in errors)
        assert "discovery_broken" in text
        assert "no_such_method" in text
        assert "tests.config.does_not_exist" in text
    finally:
        autodiscover()
    assert not registry.import_errors
