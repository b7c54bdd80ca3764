"""PostgreSQL: the audit table's monthly partitions (migration clinic 0010).

Beat makes the partitions of the coming months every day through `clinic_audit_partition_ensure`, a function owned
by the table's owner, so the application's role, which owns nothing, can make partitions and nothing else. A row
whose month has no partition goes to the default partition and is kept; `manage.py audit_partitions` reports it.
SQLite (the embedded demo) has one table and nothing to do.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)

DEFAULT_PARTITION = "clinic_auditevent_default"


@dataclass(frozen=True)
class Partition:
    name: str
    bounds: str  # as PostgreSQL states them: FOR VALUES FROM (...) TO (...), or DEFAULT
    rows: int  # the planner's estimate, except for the default partition (counted)


def _months(first: datetime.date, count: int) -> list[datetime.date]:
    months = []
    year, month = first.year, first.month
    for _ in range(count):
        months.append(datetime.date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def audit_partitions_ensure(*, months_ahead: int | None = None) -> list[str]:
    """Make the partitions of this month and the next `months_ahead` (AUDIT_PARTITION_MONTHS_AHEAD) that are
    missing; returns the names made."""
    if connection.vendor != "postgresql":
        return []
    ahead = settings.AUDIT_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    made = []
    with connection.cursor() as cursor:
        for month in _months(timezone.now().astimezone(datetime.UTC).date(), ahead + 1):
            cursor.execute("SELECT clinic_audit_partition_ensure(%s)", [month])
            if cursor.fetchone()[0]:
                made.append(f"clinic_auditevent_y{month:%Y}m{month:%m}")
    if made:
        logger.info("Audit partitions made: %s", ", ".join(made))
    return made


def audit_partitions() -> list[Partition]:
    """The audit table's partitions, oldest first, the default one last."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), GREATEST(c.reltuples, 0)::bigint "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'clinic_auditevent'::regclass ORDER BY c.relname = %s, c.relname",
            [DEFAULT_PARTITION],
        )
        rows = cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM {DEFAULT_PARTITION}")  # noqa: S608  (a constant)
        in_default = cursor.fetchone()[0]
    return [Partition(name, bounds, in_default if name == DEFAULT_PARTITION else rows) for name, bounds, rows in rows]
