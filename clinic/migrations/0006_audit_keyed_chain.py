"""The audit chain is keyed from here on, and its table refuses TRUNCATE.

- `hash_version`: rows already written keep their plain SHA-256 hash (version 1) and stay verifiable; new rows
  are hashed with HMAC-SHA256 under AUDIT_HMAC_KEY (version 2), a key the database never sees. Re-hashing the
  old rows would need the old chain to be trusted at that moment; keeping them, and fixing in the first
  checkpoint the last id a legacy row may have (`clinic.audit`), leaves a legacy hash above that id a finding.
- PostgreSQL: the hash is computed in Python now (the key stays in the application), so the one-statement
  `clinic_audit_append` gives way to `clinic_audit_head`, which takes the writers' lock and reads the last hash
  under it; the row is then inserted in the same transaction.
- PostgreSQL: a statement trigger refuses TRUNCATE, unless the session has set `clinic.audit_truncate` to
  `allowed` (only the test suite does, to empty its database between tests). The table's owner can disable any
  trigger; what it then does is found by `audit_verify` (keyed hashes, checkpoint), not prevented.
"""

import importlib

from django.db import migrations, models

HEAD = """
CREATE OR REPLACE FUNCTION clinic_audit_head(p_lock bigint) RETURNS varchar AS $$
DECLARE
    previous varchar;
BEGIN
    -- VOLATILE: the SELECT below takes its snapshot after the lock is granted, so it sees the last writer's row.
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT e.hash INTO previous FROM clinic_auditevent e ORDER BY e.id DESC LIMIT 1;
    RETURN COALESCE(previous, repeat('0', 64));
END;
$$ LANGUAGE plpgsql VOLATILE;

CREATE OR REPLACE FUNCTION clinic_auditevent_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('clinic.audit_truncate', true) = 'allowed' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'clinic_auditevent is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER clinic_auditevent_no_truncate
    BEFORE TRUNCATE ON clinic_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION clinic_auditevent_refuse_truncate();
"""

UNDO = """
DROP TRIGGER IF EXISTS clinic_auditevent_no_truncate ON clinic_auditevent;
DROP FUNCTION IF EXISTS clinic_auditevent_refuse_truncate();
DROP FUNCTION IF EXISTS clinic_audit_head(bigint);
"""

_append = importlib.import_module("clinic.migrations.0003_audit_append_function")


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_append.DROP, params=None)
        schema_editor.execute(HEAD, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNDO, params=None)
        schema_editor.execute(_append.CREATE, params=None)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0005_outbox")]

    operations = [
        # Existing rows: version 1 (plain SHA-256); rows written from now on: version 2 (HMAC).
        migrations.AddField(
            model_name="auditevent", name="hash_version", field=models.PositiveSmallIntegerField(default=1)
        ),
        migrations.AlterField(
            model_name="auditevent", name="hash_version", field=models.PositiveSmallIntegerField(default=2)
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
