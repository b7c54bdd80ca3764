"""Planner statistics after bulk writes: refreshed by autovacuum's own rule, which counts every change since the
table's last ANALYZE, so batches too small to count alone still add up where autovacuum is off."""

import pytest
from django.db import connection

from clinic.bulk import statistics_refresh, statistics_stale
from clinic.models import Clinic

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _clinics(first: int, count: int) -> None:
    Clinic.objects.bulk_create(Clinic(name=f"Clinic {n}", slug=f"clinic-{n}") for n in range(first, first + count))
    with connection.cursor() as cursor:  # this connection's counts, as a worker's reach the statistics when idle
        cursor.execute("SELECT pg_stat_force_next_flush()")


def test_writes_small_alone_make_the_statistics_stale_once_they_add_up():
    _clinics(0, 500)
    statistics_refresh(Clinic)
    assert not statistics_stale(Clinic)
    assert not statistics_stale(Clinic, written=90)  # 50 and a tenth of 500 rows: 100
    assert statistics_stale(Clinic, written=120)  # just written, not counted by the statistics yet

    for first in (500, 540, 580):  # three batches of 40 rows: none is stale alone, together 120 rows
        _clinics(first, 40)
    assert statistics_stale(Clinic)

    statistics_refresh(Clinic)
    assert not statistics_stale(Clinic)
