"""MRNs unique in a clinic regardless of case (the patient search already finds them in any case), and birth dates
checked: not in the future, not more than 120 years ago.

Before the constraint is added, the MRNs already stored are checked: if two patients of a clinic have MRNs that
differ only in case, the migration stops and lists them (creating the index would fail with a bare integrity
error). `manage.py resolve_mrn_clashes --rename` resolves them; then migrate again.
Birth dates already stored are left as they are: the rule applies when a record is next saved.
On PostgreSQL the search's index on the upper-cased MRN (0008) goes: the constraint's index, on (UPPER(mrn),
clinic), serves the same lookups.
"""

from itertools import groupby

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Exists, OuterRef
from django.db.models.functions import Upper

import patients.validators

RESOLVE = "python manage.py resolve_mrn_clashes"


def mrn_clash_lines(patients) -> list[str]:
    """One line per group of a clinic's patients whose MRNs are equal once upper-cased: the clinic, then each MRN
    with its patient id, oldest first."""
    keyed = patients.annotate(mrn_key=Upper("mrn"))
    twin = keyed.filter(clinic_id=OuterRef("clinic_id"), mrn_key=OuterRef("mrn_key")).exclude(pk=OuterRef("pk"))
    rows = (
        keyed.filter(Exists(twin))
        .order_by("clinic_id", "mrn_key", "created_at", "pk")
        .values_list("clinic_id", "clinic__slug", "mrn_key", "mrn", "pk")
    )
    return [
        f"clinic {slug} (id {clinic_id}): " + ", ".join(f"{mrn!r} (patient {pk})" for *_, mrn, pk in group)
        for (clinic_id, slug, _key), group in groupby(rows, key=lambda row: row[:3])
    ]


def refuse_mrn_clashes(apps, schema_editor):
    lines = mrn_clash_lines(apps.get_model("patients", "Patient").objects.all())
    if lines:
        raise CommandError(
            f"MRNs cannot be made unique regardless of case: {len(lines)} group(s) of patients of one clinic have "
            "MRNs that differ only in case.\n  "
            + "\n  ".join(lines)
            + f"\nList them with `{RESOLVE}`; `{RESOLVE} --rename` gives each of them but the oldest a new MRN "
            "(audited). Then run migrate again."
        )


def drop_search_mrn_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "patient_mrn_upper"', params=None)


def restore_search_mrn_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'CREATE INDEX IF NOT EXISTS "patient_mrn_upper" ON "patients_patient" (UPPER("mrn"::text))', params=None
        )


class Migration(migrations.Migration):
    dependencies = [("patients", "0009_resync_catalog_assays")]

    operations = [
        migrations.RunPython(refuse_mrn_clashes, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="patient",
            name="birth_date",
            field=models.DateField(validators=[patients.validators.validate_birth_date]),
        ),
        migrations.AlterField(
            model_name="patient",
            name="mrn",
            field=models.CharField(
                help_text="Medical record number, unique within the clinic regardless of case.",
                max_length=64,
                verbose_name="MRN",
            ),
        ),
        migrations.RemoveConstraint(model_name="patient", name="patient_mrn_unique_in_clinic"),
        migrations.AddConstraint(
            model_name="patient",
            constraint=models.UniqueConstraint(
                Upper("mrn"),
                models.F("clinic"),
                name="patient_mrn_unique_in_clinic_any_case",
                violation_error_message="A patient of this clinic already has this MRN (MRNs are compared "
                "without regard to case).",
            ),
        ),
        migrations.RunPython(drop_search_mrn_index, restore_search_mrn_index, elidable=False),
    ]
