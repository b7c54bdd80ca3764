"""Train a clinic's model from the command line, with a progress bar and the run's log.

`--sync` trains in this process; without it the run is queued for a worker and this command follows its
row until it finishes (with REDIS_URL unset, tasks run in-process anyway).
"""

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic
from mltraining import services
from mltraining.ml.train import TrainingConfig
from mltraining.models import TrainingRun, TrainingStatus, TrainingTrigger
from mltraining.selectors import active_model_for

POLL_SECONDS = 2.0


class Command(BaseCommand):
    help = "Train, compare and register a model for one clinic (the promotion gate decides whether it goes live)."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", help="Clinic slug; may be left out when there is only one clinic.")
        parser.add_argument("--candidates", help="Comma-separated candidate models (default: all).")
        parser.add_argument("--folds", type=int, help="Cross-validation folds (default 5).")
        parser.add_argument("--sync", action="store_true", help="Train in this process instead of on a worker.")
        parser.add_argument(
            "--unless-active", action="store_true", help="Do nothing when the clinic has an active model already."
        )

    def handle(self, *args, clinic=None, candidates=None, folds=None, sync=False, unless_active=False, **options):
        target = self._clinic(clinic)
        if unless_active and (active := active_model_for(clinic=target)) is not None:
            self.stdout.write(f"{target.name} has an active model already ({active}); nothing trained.")
            return
        config = self._config(candidates, folds)
        try:
            run = services.training_run_request(
                clinic=target, by=None, trigger=TrainingTrigger.MANUAL, config=config, enqueue=not sync
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"Queued training run #{run.pk} for {target.name}.")
        if sync:
            services.training_run_execute(run_id=run.pk, on_log=self._log, on_progress=self._progress)
        else:
            self.stdout.write("Waiting for a worker to train it (Ctrl-C stops waiting, not the run).")
            self._follow(run.pk)
        self._summary(TrainingRun.objects.select_related("clinic", "model_version").get(pk=run.pk))

    def _clinic(self, slug: str | None) -> Clinic:
        clinics = Clinic.objects.all()
        if slug:
            found = clinics.filter(slug=slug).first()
            if found is None:
                raise CommandError(f"No clinic with slug {slug!r}.")
            return found
        if clinics.count() != 1:
            raise CommandError("Name the clinic with --clinic SLUG (there is not exactly one).")
        return clinics.get()

    def _config(self, candidates: str | None, folds: int | None) -> TrainingConfig:
        values = {}
        if candidates:
            values["candidates"] = tuple(name.strip() for name in candidates.split(",") if name.strip())
        if folds is not None:
            values["cv_folds"] = folds
        try:
            return TrainingConfig(**values)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    _bar_drawn = False

    def _log(self, line: str) -> None:
        if self._bar_drawn:  # clear the progress bar, print the line, let the next update redraw the bar
            self.stderr.write("\r" + " " * 60 + "\r", ending="")
            self._bar_drawn = False
        self.stdout.write(line)
        self.stdout.flush()

    def _progress(self, fraction: float) -> None:
        width = 30
        filled = int(width * fraction)
        self.stderr.write(f"\r  training [{'#' * filled}{'.' * (width - filled)}] {fraction:>4.0%}", ending="")
        self.stderr.flush()
        self._bar_drawn = True

    def _follow(self, run_id: int) -> None:
        """Print the run's new log lines and its progress until it finishes."""
        shown = 0
        while True:
            run = TrainingRun.objects.only("status", "log", "progress").get(pk=run_id)
            lines = run.log.splitlines()
            for line in lines[shown:]:
                self._log(line)
            shown = len(lines)
            self._progress(run.progress)
            if not run.in_progress:
                return
            time.sleep(POLL_SECONDS)

    def _summary(self, run: TrainingRun) -> None:
        if self._bar_drawn:
            self.stderr.write("")
            self._bar_drawn = False
        if run.status != TrainingStatus.SUCCEEDED:
            raise CommandError(f"{run}: {run.error.splitlines()[0] if run.error else 'no error recorded'}")
        test, baseline = run.metrics.get("test") or {}, run.metrics.get("baseline") or {}
        version = run.model_version
        self.stdout.write(self.style.SUCCESS(f"Chosen model: {run.chosen}"))
        self.stdout.write(f"Reason: {run.reason}")
        self.stdout.write(
            f"Held-out macro ROC-AUC: {_fmt(test.get('roc_auc_ovr_macro'))} "
            f"(dummy baseline {_fmt(baseline.get('roc_auc_ovr_macro'))})"
        )
        self.stdout.write(f"Trained on: {version.training_data}")
        refusal = services.activation_refusal(trained_on=version.provenance, clinic=run.clinic)
        if refusal:
            raise CommandError(f"Registered {version} for {run.clinic}, not activated: {refusal}.")
        self.stdout.write(f"Registered {version} for {run.clinic}.")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
