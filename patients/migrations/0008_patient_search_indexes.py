"""Indexes for the patient search on PostgreSQL: a name fragment anywhere in the given or family name, or the MRN.

`patient_search` filters `given_name__icontains=word | family_name__icontains=word | mrn__iexact=query`, which
Django writes as `UPPER("given_name"::text) LIKE UPPER('%word%')` (and the same for the family name) and
`UPPER("mrn"::text) = UPPER('query')`. A B-tree cannot serve a LIKE with a leading wildcard, so every search read
all of the clinic's patients (80 ms at 100,000). Trigram indexes (pg_trgm) on exactly those expressions serve
the two LIKEs, and a B-tree on the upper-cased MRN the third, so PostgreSQL can combine the three.

PostgreSQL only, and only where the pg_trgm extension can be created (it ships with PostgreSQL's contrib, which
most installations and managed services carry; since PostgreSQL 13 a database owner may create it). Where it
cannot, a warning says so and the search works as before, unindexed.
SQLite cannot index a LIKE with a leading wildcard at all.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

INDEXES = {
    "patient_given_name_trgm": 'USING gin (UPPER("given_name"::text) gin_trgm_ops)',
    "patient_family_name_trgm": 'USING gin (UPPER("family_name"::text) gin_trgm_ops)',
    "patient_mrn_upper": '(UPPER("mrn"::text))',
}


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a refusal spares the migration's transaction
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    except DatabaseError as error:
        logger.warning("Patient search left unindexed: the pg_trgm extension could not be created (%s).", error)
        return
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
