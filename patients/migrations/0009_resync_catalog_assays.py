from django.db import migrations


def resync(apps, schema_editor):
    from patients.catalog import catalog_sync

    catalog_sync(apps)


class Migration(migrations.Migration):
    """Glucose split into fasting (LOINC 1558-6 and its mole code) and random (every other glucose code);
    troponin split by assay (hs-cTnI, hs-cTnT, conventional cTnI and cTnT, each with its own 99th percentile);
    the laboratory-reported eGFR as an analyte of its own.

    Results already stored keep their analyte: an observation does not keep the LOINC code it arrived with, so
    a stored "glucose" or "troponin" cannot be told apart afterwards. New results land on the right analyte."""

    dependencies = [("patients", "0008_patient_search_indexes")]

    operations = [migrations.RunPython(resync, migrations.RunPython.noop)]
