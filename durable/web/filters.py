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
    """The list's filters. An invalid value must not be dropped (django-filter's `qs` would
    then show every execution): `matching()` fails closed and `rejected()` says why."""

    q = django_filters.CharFilter(
        method="search",
        label="Id",
        # Bounded, and (as every CharField) without NUL, which PostgreSQL refuses.
        max_length=200,
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

    def matching(self) -> QuerySet[WorkflowExecution]:
        """The executions matching every filter; none at all when a filter is invalid."""
        if not self.is_valid():
            return WorkflowExecution.objects.none()
        matching: QuerySet[WorkflowExecution] = self.qs
        return matching

    def rejected(self) -> list[str]:
        """One line per invalid filter: its label, the value given, and the problem."""
        if self.is_valid():
            return []
        lines = []
        for name, problems in self.errors.items():
            field = self.form.fields.get(name)
            label = field.label if field is not None and field.label else name
            given = self.data.get(name, "") if name in self.form.fields else ""
            value = f" {str(given)[:60]!r}" if given else ""
            lines.append(f"{label}{value}: {' '.join(str(p) for p in problems)}")
        return lines

    def search_data(
        self, queryset: QuerySet[WorkflowExecution], name: str, value: Any
    ) -> QuerySet[WorkflowExecution]:
        return search.search(queryset, str(value))
