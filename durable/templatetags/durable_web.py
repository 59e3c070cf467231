"""Template helpers of the dashboard: `{% load durable_web %}`."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from durable.web.jsonview import json_view

register = template.Library()


@register.simple_tag
def json_viewer(value: Any, element_id: str = "") -> SafeString:
    """`{% json_viewer value "id" %}`: a collapsible, copyable view of a JSON value."""
    return json_view(value, element_id)
