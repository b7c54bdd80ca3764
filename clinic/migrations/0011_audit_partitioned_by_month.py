"""PostgreSQL: the audit trail becomes a table partitioned by month of `time` (SQLite is left as it is).

A year of 1,000 clinics is hundreds of millions of rows (docs/AUDIT.md): one heap would make every index a single
tree of that size, and an old month could only leave it by DELETE, which the trail refuses. Partitioned by month,
each month is a table of its own with its own indexes: the writers touch this month's, a date range in the admin
reads only its months, and a month can be detached whole and archived by the table's owner.

- The rows are copied into the partitioned table under the same name, with the same columns, the same sequence
  (restarted after the last id), constraints, foreign keys and indexes under the names Django gave them, so later
  migrations find them. PostgreSQL wants the partition key in every unique constraint: the primary key is
  (id, time) and `hash` is unique with `time` (a hash covers the time, so this is as strict in practice). The index
  on `time` alone is a BRIN index: rows arrive in time order, so a few pages of it cover a month.
- `clinic_audit_partition_ensure(month)` makes a month's partition if it is missing, with the TRUNCATE guard
  (statement triggers are not inherited) and no privileges for anyone but the owner: the application writes and
  reads through the parent table only. SECURITY DEFINER, so the application's role (which owns nothing) can have
  beat make next months' partitions (`clinic.audit_partitions`); it makes partitions and nothing else, at most two
  years ahead. The row trigger that refuses UPDATE and DELETE is defined on the parent and PostgreSQL clones it to
  every partition, present and future.
- A default partition takes any row whose month has no partition yet (beat stopped for months, a clock far off),
  so an audited change never fails for want of one; `manage.py audit_partitions` reports rows kept there.
- Months from the oldest row's to three ahead are made here. On a large trail this migration copies every row
  under an exclusive lock: run it in a maintenance window.

Reversing leaves the partitioned table in place (every earlier migration's code works on it).
"""

from django.db import migrations

ENSURE = """
CREATE OR REPLACE FUNCTION clinic_audit_partition_ensure(p_month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first_day timestamp := date_trunc('month', p_month::timestamp);
    partition_name text := 'clinic_auditevent_y' || to_char(p_month, 'YYYY') || 'm' || to_char(p_month, 'MM');
BEGIN
    IF first_day > date_trunc('month', now() AT TIME ZONE 'UTC') + interval '24 months' THEN
        RAISE EXCEPTION 'audit partitions are made at most 24 months ahead, not for %', p_month;
    END IF;
    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Made apart, then attached: ATTACH takes a lock that lets writers of the other months go on, where CREATE
    -- TABLE ... PARTITION OF would wait for every transaction that wrote an audit row, and stop the next ones.
    EXECUTE format('CREATE TABLE %I (LIKE clinic_auditevent INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition_name);
    EXECUTE format(
        'ALTER TABLE clinic_auditevent ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        partition_name, first_day AT TIME ZONE 'UTC', (first_day + interval '1 month') AT TIME ZONE 'UTC'
    );
    EXECUTE format(
        'CREATE TRIGGER clinic_auditevent_no_truncate BEFORE TRUNCATE ON %I '
        'FOR EACH STATEMENT EXECUTE FUNCTION clinic_auditevent_refuse_truncate()', partition_name
    );
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', partition_name);
    RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION clinic_audit_partition_ensure(date) FROM PUBLIC;
"""

TRIGGERS = """
CREATE TRIGGER clinic_auditevent_append_only BEFORE UPDATE OR DELETE ON clinic_auditevent
    FOR EACH ROW EXECUTE FUNCTION clinic_auditevent_refuse_change();
CREATE TRIGGER clinic_auditevent_no_truncate BEFORE TRUNCATE ON clinic_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION clinic_auditevent_refuse_truncate();
CREATE TABLE clinic_auditevent_default PARTITION OF clinic_auditevent DEFAULT;
CREATE TRIGGER clinic_auditevent_no_truncate BEFORE TRUNCATE ON clinic_auditevent_default
    FOR EACH STATEMENT EXECUTE FUNCTION clinic_auditevent_refuse_truncate();
REVOKE ALL ON clinic_auditevent_default FROM PUBLIC;
"""


def _partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("LOCK TABLE clinic_auditevent IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            "SELECT c.conname, pg_get_constraintdef(c.oid), c.contype FROM pg_constraint c "
            "WHERE c.conrelid = %s::regclass ORDER BY c.contype, c.conname",
            ["clinic_auditevent"],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
            "AND c.conrelid = %s::regclass)",
            ["clinic_auditevent", "clinic_auditevent"],
        )
        indexes = cursor.fetchall()
        cursor.execute("SELECT pg_get_serial_sequence('clinic_auditevent', 'id')")
        sequence = cursor.fetchone()[0]

        # The old table and everything named after it step aside, so the new one takes the same names.
        cursor.execute("ALTER TABLE clinic_auditevent RENAME TO clinic_auditevent_unpartitioned")
        for number, (name, _) in enumerate(indexes):
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "clinic_auditevent_old_index_{number}"')
        for number, (name, _, kind) in enumerate(constraints):
            if kind in "pu":  # backed by an index, whose name must be free
                cursor.execute(
                    f'ALTER TABLE clinic_auditevent_unpartitioned RENAME CONSTRAINT "{name}" '
                    f'TO "clinic_auditevent_old_{number}"'
                )
        cursor.execute(
            "CREATE TABLE clinic_auditevent (LIKE clinic_auditevent_unpartitioned INCLUDING DEFAULTS "
            'INCLUDING IDENTITY) PARTITION BY RANGE ("time")'
        )
        cursor.execute(ENSURE)
        cursor.execute(TRIGGERS)
        cursor.execute(
            "SELECT generate_series(date_trunc('month', COALESCE(min(time), now()) AT TIME ZONE 'UTC'), "
            "date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months', interval '1 month')::date "
            "FROM clinic_auditevent_unpartitioned"
        )
        for (month,) in cursor.fetchall():
            cursor.execute("SELECT clinic_audit_partition_ensure(%s)", [month])

        cursor.execute("INSERT INTO clinic_auditevent SELECT * FROM clinic_auditevent_unpartitioned")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('clinic_auditevent', 'id'), COALESCE(max(id), 0) + 1, false) "
            "FROM clinic_auditevent"
        )
        cursor.execute("DROP TABLE clinic_auditevent_unpartitioned")
        cursor.execute(f"ALTER SEQUENCE {_serial(cursor)} RENAME TO {sequence.split('.')[-1]}")

        for name, definition, kind in constraints:
            if kind == "p":
                definition = 'PRIMARY KEY (id, "time")'
            elif kind == "u":
                definition = definition.replace(")", ', "time")', 1)
            cursor.execute(f'ALTER TABLE clinic_auditevent ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            if definition.endswith('USING btree ("time")'):
                definition = definition.replace('USING btree ("time")', 'USING brin ("time")')
            cursor.execute(definition)  # read before the rename: ON clinic_auditevent, now the partitioned table


def _serial(cursor) -> str:
    cursor.execute("SELECT pg_get_serial_sequence('clinic_auditevent', 'id')")
    return cursor.fetchone()[0]


class Migration(migrations.Migration):
    atomic = True

    dependencies = [("clinic", "0010_audit_chain_per_clinic")]

    operations = [migrations.RunPython(_partition, migrations.RunPython.noop, elidable=False)]
