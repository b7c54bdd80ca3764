"""On PostgreSQL, append an audit row in one statement: `clinic_audit_append` takes the audit lock, reads the last
row's hash, hashes the new row's content onto it and inserts the row.

One round trip instead of five (BEGIN, lock, last hash, INSERT, COMMIT), so the lock that serialises writers is
held for one statement and its commit. The function is VOLATILE: each statement in it sees a fresh snapshot, so
the last hash is read after the lock is granted (a single SQL statement would have read it from a snapshot taken
before it waited for the lock, and could fork the chain). The content is serialised by the caller
(`clinic.audit.hashed_content`), so the hash is the one `compute_hash` checks: sha256(prev_hash || content).

SQLite (the embedded demo) writes rows from Python under its write lock instead.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION clinic_audit_append(
    p_lock bigint, p_time timestamptz, p_actor_id bigint, p_actor_username varchar, p_role varchar,
    p_clinic_id bigint, p_action varchar, p_object_type varchar, p_object_id varchar, p_patient_id bigint,
    p_outcome varchar, p_ip_address inet, p_request_id varchar, p_detail jsonb, p_content text
) RETURNS TABLE (id bigint, prev_hash varchar, hash varchar) AS $$
DECLARE
    previous varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT e.hash INTO previous FROM clinic_auditevent e ORDER BY e.id DESC LIMIT 1;
    previous := COALESCE(previous, repeat('0', 64));
    RETURN QUERY
    INSERT INTO clinic_auditevent AS e (
        time, actor_id, actor_username, role, clinic_id, action, object_type, object_id, patient_id, outcome,
        ip_address, request_id, detail, prev_hash, hash
    ) VALUES (
        p_time, p_actor_id, p_actor_username, p_role, p_clinic_id, p_action, p_object_type, p_object_id,
        p_patient_id, p_outcome, p_ip_address, p_request_id, p_detail, previous,
        encode(sha256(convert_to(previous || p_content, 'UTF8')), 'hex')
    ) RETURNING e.id::bigint, e.prev_hash, e.hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

DROP = (
    "DROP FUNCTION IF EXISTS clinic_audit_append(bigint, timestamptz, bigint, varchar, varchar, bigint, varchar, "
    "varchar, varchar, bigint, varchar, inet, varchar, jsonb, text);"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0002_audit_append_only")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
