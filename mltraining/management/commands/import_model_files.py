"""Move model artifacts and plots from MODEL_DIR (where they were kept before they moved into the database)
into the database. Run once, on a host that holds the old MODEL_DIR, after `migrate`; safe to run again."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from mltraining.services import model_files_import


class Command(BaseCommand):
    help = "Import the model artifacts and plots still kept as files under MODEL_DIR into the database."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=None, help="The old MODEL_DIR (default: the setting).")

    def handle(self, *args, dir: Path | None, **options):  # noqa: A002  (the option's name)
        directory = dir or Path(settings.MODEL_DIR)
        lines = model_files_import(directory=directory)
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(f"{len(lines)} version(s) or run(s) looked at under {directory}." if lines
                          else f"Nothing left to import under {directory}.")  # fmt: skip
