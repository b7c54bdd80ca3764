"""PostgreSQL: the audit table is partitioned by month (migration clinic 0011), beat makes the coming months'
partitions, and every partition is as append-only as the table (clinic.audit_partitions)."""

import datetime
import os
import subprocess
import sys
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clinic.audit import audit_record, audit_verify
from clinic.audit_partitions import DEFAULT_PARTITION, audit_partitions
from clinic.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _month_partition(months_ahead: int = 0) -> str:
    today = timezone.now().astimezone(datetime.UTC).date()
    year, month = divmod(today.year * 12 + today.month - 1 + months_ahead, 12)
    return f"clinic_auditevent_y{year}m{month + 1:02d}"


def _scalar(sql: str, params: list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def test_postgres_the_audit_table_is_partitioned_by_month_with_the_coming_months_made(doctor_a):
    event = audit_record(actor=doctor_a, action="patient.view")

    assert _scalar("SELECT relkind FROM pg_class WHERE oid = 'clinic_auditevent'::regclass") == "p"
    names = [partition.name for partition in audit_partitions()]
    assert [_month_partition(n) for n in range(4)] == [name for name in names if name != DEFAULT_PARTITION][-4:]
    assert names[-1] == DEFAULT_PARTITION
    assert _scalar("SELECT tableoid::regclass::text FROM clinic_auditevent WHERE id = %s", [event.pk]) == (
        _month_partition()
    )
    assert audit_verify().intact


def test_postgres_beat_makes_the_coming_months_partitions_once_each(settings):
    from clinic.tasks import audit_partitions_ensure

    settings.AUDIT_PARTITION_MONTHS_AHEAD = 6

    made = audit_partitions_ensure.delay().get()
    again = audit_partitions_ensure.delay().get()

    assert made == [_month_partition(n) for n in (4, 5, 6)]
    assert again == []
    triggers = _scalar(
        "SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger WHERE tgrelid = %s::regclass "
        "AND NOT tgisinternal",
        [_month_partition(6)],
    )
    assert triggers == ["clinic_auditevent_append_only", "clinic_auditevent_no_truncate"]
    assert _scalar("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [_month_partition(6)]) == _scalar(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'clinic_auditevent'"
    )


def test_postgres_partitions_are_made_at_most_two_years_ahead():
    with pytest.raises(DatabaseError, match="at most 24 months ahead"), transaction.atomic():
        _scalar("SELECT clinic_audit_partition_ensure(%s)", [timezone.now().date() + datetime.timedelta(days=800)])


@pytest.mark.django_db(transaction=True)  # committed rows: TRUNCATE also refuses a table with pending FK checks
@pytest.mark.reliability(23, "UPDATE, DELETE and TRUNCATE of a monthly partition named directly: refused")
def test_postgres_a_partition_named_directly_refuses_update_delete_and_truncate(doctor_a):
    event = audit_record(actor=doctor_a, action="patient.view")
    partition = _month_partition()

    for statement in (
        f"UPDATE {partition} SET action = 'nothing.happened'",  # noqa: S608  (our own partition's name)
        f"DELETE FROM {partition}",  # noqa: S608
        f"SET LOCAL clinic.audit_truncate = 'refused'; TRUNCATE {partition}",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    assert AuditEvent.objects.filter(pk=event.pk, action="patient.view").exists()


@pytest.mark.reliability(23, "The application's role and a monthly partition named directly: no privilege")
def test_postgres_the_application_role_writes_through_the_table_and_makes_partitions_but_cannot_touch_one(doctor_a):
    """The role split of docker-compose (`db_grant_app_role`), made in the test's transaction."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("CREATE ROLE clinic_app_in_test NOLOGIN")
        call_command("db_grant_app_role", "clinic_app_in_test", stdout=None)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE clinic_app_in_test")
        event = audit_record(actor=doctor_a, action="patient.view")
        assert AuditEvent.objects.filter(pk=event.pk).exists()  # read through the table
        made = _scalar("SELECT clinic_audit_partition_ensure(%s)", [timezone.now().date() + datetime.timedelta(366)])
        assert made is True
        for partition in (_month_partition(), _month_partition(12)):
            for statement in (
                f"SELECT count(*) FROM {partition}",  # noqa: S608  (our own partition's name)
                f"DELETE FROM {partition}",  # noqa: S608
                f"TRUNCATE {partition}",
            ):
                with (
                    pytest.raises(DatabaseError, match="permission denied"),
                    transaction.atomic(),
                    connection.cursor() as cursor,
                ):
                    cursor.execute(statement)
        transaction.set_rollback(True)


def test_postgres_a_row_whose_month_has_no_partition_is_kept_and_reported(doctor_a):
    event = audit_record(actor=doctor_a, action="patient.view")
    far = AuditEvent(time=timezone.now() + datetime.timedelta(days=900), action="clock.far.off", detail={},
                     prev_hash=event.hash, hash="f" * 64, hash_version=3)  # fmt: skip
    far.save(force_insert=True)

    with pytest.raises(CommandError, match=f"1 audit rows are in {DEFAULT_PARTITION}"):
        call_command("audit_partitions", stdout=None)

    assert _scalar("SELECT tableoid::regclass::text FROM clinic_auditevent WHERE id = %s", [far.pk]) == (
        DEFAULT_PARTITION
    )


_ROWS_BEFORE = """
import datetime
from django.utils import timezone
from clinic.audit import GENESIS_HASH, HashVersion, audit_record, compute_hash
from clinic.models import AuditEvent, Clinic
a, b = Clinic.objects.create(name="A", slug="a"), Clinic.objects.create(name="B", slug="b")
previous = GENESIS_HASH
for n in range(4):  # as the one chain across clinics left them, over the last months
    event = AuditEvent(time=timezone.now() - datetime.timedelta(days=70 - 20 * n), clinic=(a, b)[n % 2],
                       action="patient.view", detail={}, prev_hash=previous, hash_version=HashVersion.KEYED)
    event.hash = compute_hash(event)
    event.save(force_insert=True)
    previous = event.hash
for n in range(4):
    audit_record(actor=None, action="patient.view", target=(a, b)[n % 2])
"""


def test_postgres_the_migration_moves_existing_rows_into_monthly_partitions_and_they_still_verify(tmp_path):
    """Migrations clinic 0010 and 0011 on a database that already holds rows of the one chain and of clinic chains,
    in processes of their own against a database of the test's own."""
    import psycopg

    from clinic.testing import ROOT, database_url

    name = f"clinic_migration_{uuid.uuid4().hex[:8]}"
    server = database_url().rsplit("/", 1)[0]
    env = {**os.environ, "DATABASE_URL": f"{server}/{name}", "VAR_DIR": str(tmp_path),
           "AUDIT_CHECKPOINT_PATH": str(tmp_path / "checkpoint.json")}  # fmt: skip

    def manage(*args: str) -> str:
        done = subprocess.run(  # noqa: S603  (our own interpreter and arguments)
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        manage("migrate", "clinic", "0010", "-v0")
        manage("shell", "-c", _ROWS_BEFORE)
        manage("audit_verify", "--checkpoint")

        manage("migrate", "-v0")

        assert "Audit chain intact: 8 events" in manage("audit_verify")
        manage("shell", "-c", "from clinic.audit import audit_record; audit_record(actor=None, action='after')")
        assert "Audit chain intact: 1 events checked since the checkpoint" in manage(
            "audit_verify", "--since-checkpoint"
        )
        with psycopg.connect(f"{server}/{name}") as database:
            kind = database.execute("SELECT relkind FROM pg_class WHERE relname = 'clinic_auditevent'").fetchone()
            rows = database.execute("SELECT count(*), max(id), count(DISTINCT tableoid) FROM clinic_auditevent")
            counts = rows.fetchone()
            elsewhere = database.execute(
                "SELECT count(*) FROM clinic_auditevent WHERE tableoid::regclass::text <> "
                "'clinic_auditevent_y' || to_char(time AT TIME ZONE 'UTC', 'YYYY\"m\"MM')"
            ).fetchone()
        assert kind == ("p",)
        assert counts[:2] == (9, 9)  # every row kept, and the ids go on where they were
        assert counts[2] >= 3  # 70 days of rows: three months at least
        assert elsewhere == (0,)  # each row in its month's partition
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
