"""Bulk writes for batch work: COPY on PostgreSQL, several times faster than a multi-row INSERT."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.db import connection, models


def copy_insert(model: type[models.Model], objects: Sequence[models.Model], columns: Sequence[str]) -> None:
    """Insert unsaved `objects` with COPY on PostgreSQL (no primary keys come back; callers that need them
    read them afterwards), `bulk_create` elsewhere (which sets them). `columns` are attribute names (`*_id` for
    foreign keys); JSON fields are serialised here (orjson: a chunk serialises some 5,000 values, several times
    faster than the json module; NaN becomes null)."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=1000)
        return
    json_columns = {f.attname for f in model._meta.concrete_fields if isinstance(f, models.JSONField)}
    rows = (
        [orjson.dumps(getattr(o, c)).decode() if c in json_columns else getattr(o, c) for c in columns] for o in objects
    )
    bulk_insert(model, columns, rows)


def bulk_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert plain rows (values in `columns` order of attribute names; JSON values already serialised):
    COPY on PostgreSQL without building model instances, `bulk_create` elsewhere."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=1000)
        return
    fields = {f.attname: f for f in model._meta.concrete_fields}
    names = ", ".join(fields[c].column for c in columns)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy:  # noqa: S608
        for row in rows:
            copy.write_row(row)


def statistics_refresh(*tables: type[models.Model]) -> None:
    """After a bulk load, PostgreSQL's planner still plans with the row counts from before it until autovacuum
    analyzes the tables (a minute later at best, never where it is off): refresh them now. Elsewhere, nothing."""
    if connection.vendor != "postgresql":
        return
    names = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {names}")  # noqa: S608  (table names from the models, quoted)


def planner_row_count(model: type[models.Model]) -> float:
    """The rows PostgreSQL's planner believes the model's table holds (its last ANALYZE's count, 0 if never
    analyzed); 0 elsewhere."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return max(float(row[0]), 0.0) if row else 0.0
