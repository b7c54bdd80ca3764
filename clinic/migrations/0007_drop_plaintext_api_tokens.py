"""API tokens moved from DRF's authtoken (stored in plain text, never expiring) to django-rest-knox (stored as
digests, expiring). The old table is dropped with every token in it: a client asks `POST /api/v1/auth/token/` for
a new one. Written by hand: the authtoken app is no longer installed, so no model of it is left to migrate."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0006_audit_keyed_chain"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop),
    ]
