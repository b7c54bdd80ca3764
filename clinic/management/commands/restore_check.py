from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clinic.backup import BackupError, restore_check


class Command(BaseCommand):
    requires_system_checks = []  # nothing it does needs the URLs and views loaded
    help = (
        "Restore a backup made by `manage.py backup` into a fresh PostgreSQL database and verify it there: checksums, "
        "migrations, every table's row count and the audit chain against the backed-up checkpoint. Exits non-zero "
        "on any mismatch (docs/BACKUP.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="The backup's directory.")
        parser.add_argument(
            "--database-url", required=True,
            help="The database to restore into, e.g. postgres://owner@host:5432/clinic_restored: created if absent, "
            "refused if it has tables.",
        )  # fmt: skip
        parser.add_argument(
            "--model-dir", type=Path,
            help="Restore the model artifacts into this (new or empty) directory too.",
        )  # fmt: skip

    def handle(self, *args, directory: Path, database_url: str, model_dir: Path | None = None, **options):
        try:
            report = restore_check(directory=directory, database_url=database_url, model_dir=model_dir)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        for check in report.checks:
            self.stdout.write(f"ok: {check}")
        if not report.ok:
            raise CommandError("The restore does not match the backup:\n" + "\n".join(report.problems))
        self.stdout.write(self.style.SUCCESS("The restored database matches the backup."))
