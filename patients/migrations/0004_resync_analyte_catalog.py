from django.db import migrations


def resync(apps, schema_editor):
    from patients.catalog import catalog_sync

    catalog_sync(apps)


class Migration(migrations.Migration):
    """Bring stored analytes up to catalog_data.py: exact lipid cut-points, sex-specific hemoglobin and
    creatinine limits, hs-CRP at 5 mg/L, sleep ranges by age, wider plausible limits, readable units."""

    dependencies = [("patients", "0003_observation_source_demo")]

    operations = [migrations.RunPython(resync, migrations.RunPython.noop)]
