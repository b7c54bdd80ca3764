"""`manage.py evaluate_csv FILE --target COLUMN [--test FILE]`: `python -m mltraining.ml.evaluate_csv`, as a command."""

from django.core.management.base import BaseCommand, CommandError

from mltraining.ml import evaluate_csv


class Command(BaseCommand):
    help = (
        "Audit a labelled CSV, compare the candidate models by grouped cross-validation, choose one by the rule, "
        "and report it on a held-out part of FILE or on --test FILE (naive leaky figures beside, duplicates only)."
    )

    def add_arguments(self, parser):
        evaluate_csv.add_arguments(parser)

    def handle(self, *args, **options):
        names = ("file", "target", "test", "candidates", "folds", "seed", "calibration")
        try:
            text = evaluate_csv.report(**{name: options[name] for name in names})
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(text, ending="")
