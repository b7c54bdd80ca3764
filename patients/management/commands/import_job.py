"""`manage.py import_job ID`: print an import job's progress until it has finished, then its outcome."""

import time

from django.core.management.base import BaseCommand, CommandError

from patients.imports.selectors import import_job_progress
from patients.models import ImportJob, ImportJobStatus

POLL_SECONDS = 2.0


class Command(BaseCommand):
    help = "Follow an import job (queued by the portal, the API or `import_fhir --background`) until it ends."

    def add_arguments(self, parser):
        parser.add_argument("job_id", type=int)
        parser.add_argument("--no-wait", action="store_true", help="Print the progress once and return.")

    def handle(self, *args, job_id: int, no_wait: bool, **options):
        last = None
        while True:
            job = ImportJob.objects.filter(pk=job_id).first()  # an operator's command: every clinic's jobs
            if job is None:
                raise CommandError(f"No import job {job_id}.")
            progress = import_job_progress(job=job)
            files = f"{progress['files_done']} of {progress['files_total']} files"
            line = f"Job {job.pk} {progress['status_display']}: {files}, {progress['resources_done']:,} resources. "
            line += progress["step"]
            if line != last:
                self.stdout.write(line)
                last = line
            if job.finished or no_wait:
                break
            time.sleep(POLL_SECONDS)
        if job.status == ImportJobStatus.FAILED:
            raise CommandError(job.error)
