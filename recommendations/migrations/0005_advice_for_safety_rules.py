from django.db import migrations

from recommendations.catalog import advice_sync


class Migration(migrations.Migration):
    """Advice items of the safety rules: acute kidney injury, an unconfirmed low eGFR, severe hyperkalaemia, a
    critical result with no item of its own, a result too old to judge, and a sex not recorded."""

    dependencies = [("recommendations", "0004_rationale_rules_only")]

    operations = [migrations.RunPython(advice_sync, migrations.RunPython.noop)]
