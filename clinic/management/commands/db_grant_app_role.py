from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from clinic.models import AuditEvent


class Command(BaseCommand):
    help = (
        "PostgreSQL: give the application's database role what it needs and no more. It reads and writes every "
        "table, but may only add rows to the audit trail and read them (no UPDATE, DELETE or TRUNCATE), and owns "
        "nothing, so it cannot disable the audit triggers; it may make the audit table's next monthly partitions "
        "(beat does), not touch them directly. Run as the owner of the tables after each `migrate`."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role the web, worker and beat processes connect as")

    def handle(self, *args, role: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Roles are a PostgreSQL setting; this database is " + connection.vendor + ".")
        name = connection.ops.quote_name(role)
        audit = connection.ops.quote_name(AuditEvent._meta.db_table)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise CommandError(f"There is no database role {role!r}; create it first (see docker/postgres/).")
            for statement in (
                f"GRANT USAGE ON SCHEMA public TO {name}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
                f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {audit} FROM {name}",
                f"GRANT EXECUTE ON FUNCTION clinic_audit_partition_ensure(date) TO {name}",
            ):
                cursor.execute(statement)
            # The audit table's monthly partitions (migration clinic 0010): nothing at all. Rows are written and read
            # through the partitioned table, whose privileges are the ones checked; a partition named directly
            # is refused.
            cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass", [audit])
            for (partition,) in cursor.fetchall():
                cursor.execute(f"REVOKE ALL ON {partition} FROM {name}")
        self.stdout.write(self.style.SUCCESS(f"Role {role}: tables read and written, the audit trail append-only."))
