"""Indexes for the patient search on PostgreSQL: a name fragment anywhere in the given or family name, or the MRN.

`patient_search` filters `given_name__icontains=word | family_name__icontains=word | mrn__iexact=query`, which
Django writes as `UPPER("given_name"::text) LIKE UPPER('%word%')` (and the same for the family name) and
`UPPER("mrn"::text) = UPPER('query')`. A B-tree cannot serve a LIKE with a leading wildcard, so every search read
all of the clinic's patients (80 ms at 100,000). Trigram indexes (pg_trgm) on exactly those expressions serve
the two LIKEs, and a B-tree on the upper-cased MRN the third, so PostgreSQL can combine the three.

PostgreSQL only, and only where the pg_trgm extension is installed on the server (it ships with PostgreSQL's
contrib, which most installations and managed services carry); without it the search works as before, unindexed.
SQLite cannot index a LIKE with a leading wildcard at all.
"""

from django.db import migrations

INDEXES = {
    "patient_given_name_trgm": 'USING gin (UPPER("given_name"::text) gin_trgm_ops)',
    "patient_family_name_trgm": 'USING gin (UPPER("family_name"::text) gin_trgm_ops)',
    "patient_mrn_upper": '(UPPER("mrn"::text))',
}


def _trigrams_available(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql" or not _trigrams_available(schema_editor):
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    for name, definition in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "patients_patient" {definition}', params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"', params=None)


class Migration(migrations.Migration):
    dependencies = [("patients", "0007_acknowledgement_note")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
