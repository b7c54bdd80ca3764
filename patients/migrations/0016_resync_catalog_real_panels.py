from django.db import migrations


def resync(apps, schema_editor):
    from patients.catalog import catalog_sync

    catalog_sync(apps)


class Migration(migrations.Migration):
    """The catalog covers real panels: the full blood count's red cell and platelet indices and its white-cell
    differential; urea, calcium, chloride, total CO2, magnesium, phosphate and lactate; albumin, total protein,
    globulin, bilirubin and alkaline phosphatase; INR, PT and aPTT; ferritin, iron, TIBC and transferrin saturation;
    the urine albumin/creatinine ratio and test strip (specific gravity, pH, glucose, protein, ketones, bilirubin);
    NT-proBNP; fifteen allergen-specific IgE; arterial pH, pCO2, pO2 and
    bicarbonate. New units for existing analytes:
    eGFR written "mL/min", troponin in pg/mL, enzymes in IU/L. Existing analytes keep their ranges and limits.

    The new analytes are recorded, flagged and shown, and their critical limits give the urgent item; no model
    reads them (mltraining.ml.features.RECORD_ONLY)."""

    dependencies = [("patients", "0015_import_jobs")]

    operations = [migrations.RunPython(resync, migrations.RunPython.noop)]
