from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from clinic.audit_partitions import DEFAULT_PARTITION, audit_partitions, audit_partitions_ensure


class Command(BaseCommand):
    help = (
        "PostgreSQL: make the audit table's monthly partitions of this month and the coming ones (beat does daily), "
        "list them, and fail if rows had to go to the default partition for want of their month's."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--months-ahead", type=int, default=None, help="default: AUDIT_PARTITION_MONTHS_AHEAD (3); at most 24"
        )

    def handle(self, *args, months_ahead: int | None = None, **options):
        if connection.vendor != "postgresql":
            self.stdout.write(f"The audit table is partitioned on PostgreSQL only, not on {connection.vendor}.")
            return
        if months_ahead is not None and not 0 <= months_ahead <= 24:
            raise CommandError("--months-ahead must be between 0 and 24.")
        for name in audit_partitions_ensure(months_ahead=months_ahead):
            self.stdout.write(self.style.SUCCESS(f"Made {name}."))
        partitions = audit_partitions()
        for partition in partitions:
            self.stdout.write(f"{partition.name}  {partition.bounds}  ~{partition.rows} rows")
        default = next((p for p in partitions if p.name == DEFAULT_PARTITION), None)
        if default and default.rows:
            raise CommandError(
                f"{default.rows} audit rows are in {DEFAULT_PARTITION}: their month had no partition when they were "
                "written (beat stopped, or a clock far off). They are kept and verified like any other; to give their "
                "month its partition, the table's owner detaches the default partition, makes the month's, moves the "
                "rows and attaches it again (docs/AUDIT.md)."
            )
