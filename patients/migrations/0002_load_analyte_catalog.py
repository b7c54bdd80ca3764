from django.db import migrations


def load(apps, schema_editor):
    from patients.catalog import catalog_sync

    catalog_sync(apps)


class Migration(migrations.Migration):
    """Load the analyte catalog. A later change to catalog_data.py ships with a new migration calling the same sync."""

    dependencies = [("patients", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
