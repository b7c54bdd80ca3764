"""Portal pages of import jobs: queue one (the files are stored, the job runs on a worker: the page answers at
once), follow its progress, read its summary; the clinic's jobs. Staff, doctors and admins of the clinic."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from patients.imports import jobs, selectors
from patients.imports.forms import JobUploadForm
from patients.imports.views import SHOWN_CRITICAL, importer_required
from patients.models import ImportJobStatus

PAGE_SIZE = 25
BADGES = {
    ImportJobStatus.QUEUED: "text-bg-secondary",
    ImportJobStatus.RUNNING: "text-bg-info",
    ImportJobStatus.SUCCEEDED: "text-bg-success",
    ImportJobStatus.FAILED: "text-bg-danger",
}


@importer_required
def job_new(request: HttpRequest) -> HttpResponse:
    form = JobUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        files = [(file.name, file.chunks()) for file in form.cleaned_data["files"]]
        try:
            job = jobs.import_job_create(
                by=request.user, clinic=request.user.clinic, kind=form.cleaned_data["kind"], files=files,
                options=form.options(),
            )  # fmt: skip
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Import job {job.pk} queued: {len(job.files)} file(s). This page follows it.")
            return redirect("imports:job_detail", pk=job.pk)
    context = {"form": form, "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES}
    return render(request, "patients/imports/job_new.html", context)


@importer_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.import_jobs_for(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"job": job, "badge": BADGES[job.status], "progress": selectors.import_job_progress(job=job)} for job in page
    ]
    return render(request, "patients/imports/job_list.html", {"page": page, "rows": rows})


@importer_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.import_job_get_for(user=request.user, pk=pk)
    summary = selectors.import_job_summary_read(user=request.user, job=job) if job.finished else {}
    critical = summary.get("observations", {}).get("critical", summary.get("critical", []))
    context = {
        "job": job,
        "badge": BADGES[job.status],
        "progress": selectors.import_job_progress(job=job),
        "progress_url": reverse("imports:job_progress", args=[job.pk]),
        "summary": summary,
        "critical": critical[:SHOWN_CRITICAL],
        "critical_count": summary.get("observations", {}).get("critical_count", summary.get("critical_count", 0)),
    }
    return render(request, "patients/imports/job_detail.html", context)


@never_cache
@importer_required
@require_GET
def job_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """What the job page polls every 2 s while the job runs: counts and state, no patient data."""
    job = selectors.import_job_get_for(user=request.user, pk=pk)
    return JsonResponse(selectors.import_job_progress(job=job))
