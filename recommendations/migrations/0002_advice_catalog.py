from django.db import migrations

from recommendations.catalog import advice_sync


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0001_initial")]

    operations = [migrations.RunPython(advice_sync, migrations.RunPython.noop)]
