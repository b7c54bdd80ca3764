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


# Autovacuum's default rule (autovacuum_analyze_threshold, autovacuum_analyze_scale_factor): a table is analyzed once
# the rows changed since its last ANALYZE pass 50 and a tenth of the rows the planner counted then.
STALE_ROWS, STALE_SHARE = 50, 0.1


def statistics_stale(model: type[models.Model], *, written: int = 0) -> bool:
    """Whether the planner's statistics of the model's table are out of date by autovacuum's rule, counting every
    change since the last ANALYZE (so it holds where autovacuum is off) and `written` rows just written, which the
    statistics may not count yet (a transaction's counts arrive when it ends, a second later at most). False except
    on PostgreSQL."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT GREATEST(c.reltuples, 0), COALESCE(s.n_mod_since_analyze, 0) FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = %s::regclass",
            [model._meta.db_table],
        )
        counted, changed = cursor.fetchone()
    return changed + written > STALE_ROWS + STALE_SHARE * counted
