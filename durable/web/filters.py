"""The execution list's filters (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from durable.conf import durable_settings
from durable.dsl import registry
from durable.models import ExecutionStatus, WorkflowExecution
from durable.web import search


def _workflow_choices() -> list[tuple[str, str]]:
    names = {d.name for d in registry.all_definitions()}
    names.update(
        WorkflowExecution.objects.using(durable_settings.DATABASE)
        .order_by()
        .values_list("workflow_name", flat=True)
        .distinct()
    )
    return [(n, n) for n in sorted(names)]


def _queue_choices() -> list[tuple[str, str]]:
    return [(q, q) for q in durable_settings.queue_names()]


class ExecutionFilter(django_filters.FilterSet):  # type: ignore[misc]
    q = django_filters.CharFilter(
        method="search",
        label="Id",
        widget=forms.TextInput(attrs={"placeholder": "workflow id", "type": "search"}),
    )
    data = django_filters.CharFilter(
        method="search_data",
        label="Input, context, result, error",
        max_length=search.MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "words, or key=value", "type": "search"}),
    )
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices, empty_label="any")
    workflow_name = django_filters.ChoiceFilter(
        label="Workflow", choices=_workflow_choices, empty_label="any"
    )
    queue = django_filters.ChoiceFilter(choices=_queue_choices, empty_label="any")
    created_after = django_filters.DateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Created from",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    created_before = django_filters.DateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="to",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = WorkflowExecution
        fields = [
            "q",
            "data",
            "status",
            "workflow_name",
            "queue",
            "created_after",
            "created_before",
        ]

    def search(
        self, queryset: QuerySet[WorkflowExecution], name: str, value: Any
    ) -> QuerySet[WorkflowExecution]:
        value = str(value).strip()
        return queryset.filter(workflow_id__icontains=value) if value else queryset

    def search_data(
        self, queryset: QuerySet[WorkflowExecution], name: str, value: Any
    ) -> QuerySet[WorkflowExecution]:
        return search.search(queryset, str(value))
