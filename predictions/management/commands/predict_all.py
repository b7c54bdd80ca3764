"""`manage.py predict_all [--clinic SLUG]`: score every patient of a clinic in a batch, with a progress bar.

The batch's chunks go to the workers; this command follows the batch row until it finishes (with REDIS_URL
unset, tasks run in-process and the batch has finished before the first look). Exits non-zero when chunks
failed, so a scheduler or a script notices.
"""

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic
from predictions import selectors, services
from predictions.models import BatchStatus, BatchTrigger

POLL_SECONDS = 1.0
BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Score every patient of a clinic with its active model, in chunks; prints progress and a summary."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", help="Clinic slug; may be left out when there is only one clinic.")

    def handle(self, *args, clinic=None, **options):
        target = self._clinic(clinic)
        started = time.monotonic()
        try:
            batch = services.prediction_batch_start(clinic=target, by=None, trigger=BatchTrigger.COMMAND)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"Batch #{batch.pk} for {target.name}: {batch.total:,} patients in {batch.chunks_total:,} chunks, "
            f"model v{batch.model_version.version}."
        )
        progress = self._follow(batch.pk)
        self._summary(progress, time.monotonic() - started)

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

    def _follow(self, batch_id: int) -> dict:
        """Redraw the bar from the batch row until the batch has finished; returns its last progress."""
        while True:
            progress = selectors.batch_progress(batch=selectors.batch_by_id(pk=batch_id))
            if progress["finished"]:
                if progress["total"]:
                    self._bar(progress, ending="\n")
                return progress
            self._bar(progress)
            time.sleep(POLL_SECONDS)

    def _bar(self, progress: dict, ending: str = "") -> None:
        filled = int(BAR_WIDTH * progress["progress"])
        self.stderr.write(
            f"\r  scoring [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress['done'] + progress['failed']:>10,}"
            f" / {progress['total']:,}  chunks {progress['chunks_finished']:,}/{progress['chunks_total']:,}",
            ending=ending,
        )
        self.stderr.flush()

    def _summary(self, progress: dict, elapsed: float) -> None:
        seconds = progress["seconds"]
        self.stdout.write(
            f"{progress['status_display']}: {progress['done']:,} scored, {progress['failed']:,} in failed chunks, "
            f"{progress['total']:,} patients; batch {'-' if seconds is None else f'{seconds:,.1f} s'}, "
            f"elapsed {elapsed:,.1f} s."
        )
        for chunk in progress["failed_chunks"]:
            self.stdout.write(self.style.ERROR(f"  chunk {chunk['index']} failed: {chunk['error']}"))
        if progress["status"] == BatchStatus.FAILED:
            raise CommandError(f"Batch #{progress['id']} failed: no chunk could be scored.")
        if progress["status"] == BatchStatus.PARTIAL:
            raise CommandError(
                f"Batch #{progress['id']} finished with {len(progress['failed_chunks'])} failed chunk(s); "
                f"{progress['failed']:,} patients were not scored."
            )
        self.stdout.write(self.style.SUCCESS(f"Batch #{progress['id']} succeeded."))
