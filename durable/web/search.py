"""Search executions by what they carry: input, context, result and error.

`key=value` (or `key:value`) finds executions whose input, context or result has that
top-level key with that value (a JSON value when it parses as one: `total=1200`,
`vip=true`, else a string). Anything else is text: on PostgreSQL, full-text search over
every key and value of the four columns (`jsonb_to_tsvector`, the `simple` configuration:
words, no stemming, all of them must appear); elsewhere (SQLite), a case-insensitive
`LIKE` on their JSON text.

There is no index for it (one over the context would cost every checkpoint a GIN update):
on a large table, narrow the search with the other filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import BooleanField, Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from durable.models import WorkflowExecution

MAX_LENGTH = 200
SEARCHED = ("input", "context", "result", "error")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z_][\w-]{0,99})\s*[=:]\s*(.+?)\s*$")

Search = Callable[[QuerySet[WorkflowExecution], str], QuerySet[WorkflowExecution]]


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _by_key(
    queryset: QuerySet[WorkflowExecution], key: str, text: str
) -> QuerySet[WorkflowExecution]:
    value = _json_value(text)
    match = Q()
    for column in ("input", "context", "result"):
        match |= Q(**{f"{column}__{key}": value})
    return queryset.filter(match)


def _fulltext(queryset: QuerySet[WorkflowExecution], text: str) -> QuerySet[WorkflowExecution]:
    table = WorkflowExecution._meta.db_table
    vector = " || ".join(
        f"jsonb_to_tsvector('simple', COALESCE({table}.\"{column}\", 'null'::jsonb), '[\"all\"]')"
        for column in SEARCHED
    )
    # On the query's own rows, so the other filters narrow what is searched.
    matches = RawSQL(
        f"({vector}) @@ plainto_tsquery('simple', %s)", [text], output_field=BooleanField()
    )
    return queryset.alias(_search=matches).filter(_search=True)


def _like(queryset: QuerySet[WorkflowExecution], text: str) -> QuerySet[WorkflowExecution]:
    # JSON text escapes non-ASCII characters (\\u00e9): look for that spelling too.
    spellings = {text, json.dumps(text)[1:-1]}
    annotated = queryset.annotate(
        **{f"_search_{column}": Cast(column, TextField()) for column in SEARCHED}
    )
    match = Q()
    for spelling in spellings:
        for column in SEARCHED:
            match |= Q(**{f"_search_{column}__icontains": spelling})
    return annotated.filter(match)


_TEXT_SEARCH: dict[str, Search] = {"postgresql": _fulltext}


def search(queryset: QuerySet[WorkflowExecution], text: str) -> QuerySet[WorkflowExecution]:
    """The executions of `queryset` that match `text` (see the module's docstring)."""
    text = text.strip()
    if not text:
        return queryset
    if len(text) > MAX_LENGTH:
        raise ValueError(f"a search is at most {MAX_LENGTH} characters, got {len(text)}")
    pair = _KEY_VALUE.match(text)
    if pair is not None:
        return _by_key(queryset, pair.group(1), pair.group(2))
    vendor = connections[queryset.db].vendor
    return _TEXT_SEARCH.get(vendor, _like)(queryset, text)
