"""Reads of import jobs, scoped first: a job of another clinic does not exist for you (404)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from patients.models import ImportJob

JOBS_LISTED = 50


def import_jobs_for(*, user: User) -> QuerySet[ImportJob]:
    """The jobs of the user's clinic (every clinic for a superuser); roles that cannot import: 403."""
    if not roles.can_enter_results(user):
        raise PermissionDenied("Your role cannot import results.")
    jobs = ImportJob.objects.select_related("created_by")
    return jobs if user.is_superuser else jobs.filter(clinic_id=user.clinic_id)


def import_job_get_for(*, user: User, pk: int) -> ImportJob:
    return get_object_or_404(import_jobs_for(user=user), pk=pk)


def import_job_progress(*, job: ImportJob) -> dict[str, Any]:
    """What the progress page polls and the command prints: state and counts, no patient data (so not audited)."""
    progress = job.progress or {}
    files_total = progress.get("files_total") or len(job.files) or 1
    current = progress.get("current_done", 0) / progress["current_total"] if progress.get("current_total") else 0
    fraction = 1.0 if job.finished else min(1.0, (progress.get("files_done", 0) + current) / files_total)
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "status_display": job.get_status_display(),
        "finished": job.finished,
        "files_done": progress.get("files_done", 0),
        "files_total": progress.get("files_total", len(job.files)),
        "resources_done": progress.get("resources_done", 0),
        "step": progress.get("step", ""),
        "progress": round(fraction, 4),
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def import_job_summary_read(*, user: User, job: ImportJob) -> dict[str, Any]:
    """The finished job's summary (MRNs, critical values: patient data), audited as a read."""
    audit_record(actor=user, action="import_job.view", target=job, detail={"status": job.status})
    return job.summary
