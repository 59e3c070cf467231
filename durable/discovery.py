"""Import every app's `workflows` module and the modules in `DURABLE["WORKFLOW_MODULES"]`.

A module whose workflow is invalid does not stop Django from starting: the error is kept
and reported by `manage.py check` (durable.E005), where an operator sees it.
"""

from __future__ import annotations

import importlib
import traceback

from django.apps import apps
from django.utils.module_loading import module_has_submodule

from durable.conf import durable_settings
from durable.dsl import registry
from durable.exceptions import DefinitionError


def autodiscover() -> None:
    registry.import_errors.clear()
    modules = [
        f"{config.name}.workflows"
        for config in apps.get_app_configs()
        if module_has_submodule(config.module, "workflows")
    ]
    extra = durable_settings.WORKFLOW_MODULES
    if isinstance(extra, list | tuple):
        modules += [m for m in extra if isinstance(m, str)]
    for module in modules:
        try:
            importlib.import_module(module)
        except DefinitionError as exc:
            registry.import_errors.append(f"{module}: {exc}")
        except ImportError as exc:
            registry.import_errors.append(
                f"{module}: cannot be imported: {exc}\n{traceback.format_exc(limit=3)}"
            )
