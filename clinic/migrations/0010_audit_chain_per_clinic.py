"""A chain of audit rows per clinic (and one for rows of no clinic), each with a writers' lock of its own.

- Rows written from here on carry `hash_version` 3: each is chained to the previous row of its own clinic. Rows
  already written keep version 1 or 2 and stay one chain across all clinics, closed and verified as before
  (`clinic.audit`; docs/AUDIT.md says why they are not re-chained).
- `clinic_audit_chain_idx`: each clinic's chain in id order (version 3 rows only), for the next writer's head and
  for the rows after a checkpoint.
- PostgreSQL: `clinic_audit_chain_head(clinic)` takes the advisory lock of that clinic's chain (two keys: a
  constant naming the audit trail, the clinic's id; 0 under another constant for rows of no clinic) and reads the
  chain's last hash under it, so writers of different clinics no longer wait for each other. It replaces
  `clinic_audit_head`, whose one lock serialised every writer.
"""

from django.db import migrations, models

HEAD = """
CREATE OR REPLACE FUNCTION clinic_audit_chain_head(p_clinic bigint) RETURNS varchar AS $$
DECLARE
    previous varchar;
BEGIN
    -- VOLATILE: the SELECT below takes its snapshot after the lock is granted, so it sees the last writer's row.
    IF p_clinic IS NULL THEN
        PERFORM pg_advisory_xact_lock(731622041, 0);
        SELECT e.hash INTO previous FROM clinic_auditevent e
            WHERE e.clinic_id IS NULL AND e.hash_version >= 3 ORDER BY e.id DESC LIMIT 1;
    ELSE
        PERFORM pg_advisory_xact_lock(731622040, p_clinic::integer);
        SELECT e.hash INTO previous FROM clinic_auditevent e
            WHERE e.clinic_id = p_clinic AND e.hash_version >= 3 ORDER BY e.id DESC LIMIT 1;
    END IF;
    RETURN COALESCE(previous, repeat('0', 64));
END;
$$ LANGUAGE plpgsql VOLATILE;

DROP FUNCTION IF EXISTS clinic_audit_head(bigint);
"""

UNDO = """
CREATE OR REPLACE FUNCTION clinic_audit_head(p_lock bigint) RETURNS varchar AS $$
DECLARE
    previous varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT e.hash INTO previous FROM clinic_auditevent e ORDER BY e.id DESC LIMIT 1;
    RETURN COALESCE(previous, repeat('0', 64));
END;
$$ LANGUAGE plpgsql VOLATILE;

DROP FUNCTION IF EXISTS clinic_audit_chain_head(bigint);
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HEAD, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNDO, params=None)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0009_clinic_time_zone")]

    operations = [
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("hash_version__gte", 3)), fields=["clinic", "id"], name="clinic_audit_chain_idx"
            ),
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
