"""Copy one execution, with every row that belongs to it, N times, in SQL (COPY speed).

The benchmark needs millions of finished executions (scale), 100,000 parked ones (waiting)
and 70,000 ready ones (memory); `durable.start()` makes about 300 a second here. So one
template execution is brought to the state wanted by the real engine (run to completion,
parked, or just started), then `clone_execution` copies its row and the rows of every table
with a foreign key to it (step attempts, tasks, pending inputs, events...) with
INSERT ... SELECT over generate_series. The copies are what the engine itself wrote, whatever
the engine's representation of that state is. Columns are taken from the models, so the
copy follows model changes; a unique column gets a fresh value (workflow_id) or NULL.
Datetime columns move back one millisecond per copy, so the copies spread over time.
For large counts the tables' plain indexes are dropped first and rebuilt after, then the
tables are vacuumed, so that what is timed next runs on settled tables.
"""

from __future__ import annotations

import time
from typing import Any

CHUNK = 500_000
REBUILD_FROM = 200_000  # copies from which dropping and rebuilding indexes pays


def _select_list(model: Any, alias: str, overrides: dict[str, str]) -> tuple[list[str], list[str]]:
    from django.db import models

    columns, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        column = f.column
        if column in overrides:
            value = overrides[column]
        elif f.unique and f.null:
            value = "NULL"
        elif f.unique:
            raise RuntimeError(f"cannot clone {model.__name__}.{f.name}: unique and not null")
        elif isinstance(f, models.DateTimeField):
            value = f"{alias}.\"{column}\" - clone_ids.g * interval '1 millisecond'"
        else:
            value = f'{alias}."{column}"'
        columns.append(f'"{column}"')
        values.append(value)
    return columns, values


def _per_execution(rel: Any) -> bool:
    """Whether the rows of a relation belong to one execution and are copied with it: not
    child executions (the parent FK), not rows shared by a key (flow-control keys)."""
    from durable.models import WorkflowExecution

    model = rel.related_model
    if model is WorkflowExecution or not (rel.one_to_many or rel.one_to_one):
        return False
    return not any(
        f.unique and not f.null and not f.primary_key and f.column != rel.field.column
        for f in model._meta.concrete_fields
    )


def clone_execution(
    template_pk: int, count: int, prefix: str, *, first: int = 1, progress: bool = True
) -> None:
    """Insert `count` copies of execution `template_pk`, workflow ids `<prefix><first>`..."""
    from django.db import connection, transaction

    from durable.models import WorkflowExecution

    table = WorkflowExecution._meta.db_table
    children = [rel for rel in WorkflowExecution._meta.related_objects if _per_execution(rel)]
    tables = [table] + [rel.related_model._meta.db_table for rel in children]
    rebuild = _drop_plain_indexes(tables) if count >= REBUILD_FROM else []
    done, began = 0, time.monotonic()
    while done < count:
        size = min(CHUNK, count - done)
        with transaction.atomic(), connection.cursor() as cursor:
            # The copies are set-up, not measured: no need to wait for their WAL flush.
            cursor.execute("SET LOCAL synchronous_commit = off")
            columns, values = _select_list(
                WorkflowExecution,
                "e",
                {"workflow_id": "%s || clone_ids.g"},
            )
            cursor.execute("DROP TABLE IF EXISTS clone_ids")
            cursor.execute("CREATE TEMP TABLE clone_ids (id bigint, g bigint) ON COMMIT DROP")
            # generate_series feeds the copies; RETURNING pairs each new id with its number.
            cursor.execute(
                f"""
                WITH series AS (SELECT g FROM generate_series(%s, %s) g),
                ins AS (
                    INSERT INTO "{table}" ({", ".join(columns)})
                    SELECT {", ".join(values)} FROM "{table}" e, series clone_ids
                    WHERE e.id = %s
                    RETURNING id, workflow_id
                )
                INSERT INTO clone_ids
                SELECT id, substr(workflow_id, length(%s) + 1)::bigint FROM ins
                """,
                [first + done, first + done + size - 1, prefix, template_pk, prefix],
            )
            for rel in children:
                model = rel.related_model
                fk = rel.field.column
                columns, values = _select_list(model, "c", {fk: "clone_ids.id"})
                cursor.execute(
                    f"""
                    INSERT INTO "{model._meta.db_table}" ({", ".join(columns)})
                    SELECT {", ".join(values)} FROM "{model._meta.db_table}" c, clone_ids
                    WHERE c."{fk}" = %s
                    """,
                    [template_pk],
                )
        done += size
        if progress and count > CHUNK:
            print(f"  cloned {done:,}/{count:,} in {time.monotonic() - began:.0f}s", flush=True)
    with connection.cursor() as cursor:
        for definition in rebuild:
            cursor.execute(definition)
        if rebuild:  # a steady state, as autovacuum would leave it, before anything is timed
            cursor.execute("VACUUM ANALYZE " + ", ".join(f'"{t}"' for t in tables))
        cursor.execute("ANALYZE")
        if rebuild:
            # Write the fill's dirty pages out now: left to the checkpointer, they compete
            # with the commit flushes of what is timed next (seen as 190 ms COMMITs).
            cursor.execute("CHECKPOINT")


def _drop_plain_indexes(tables: list[str]) -> list[str]:
    """Drop the indexes of `tables` that back no constraint; return their definitions.

    Building an index once over millions of rows is several times faster than updating it
    row by row; constraint indexes (primary keys, unique columns) stay, they are needed.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            [tables],
        )
        rows = cursor.fetchall()
        for name, _ in rows:
            cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]
