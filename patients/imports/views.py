"""Portal pages of the CSV import: upload, preview, confirm, result, and the problem report as CSV; and the
doctors' page of imported diagnoses waiting to be confirmed.

The uploaded file is kept server-side (`uploads`) under a random token remembered in the uploader's
session; the preview and the confirmation both run the same service on it, so what is written is
validated again at the moment it is written.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clinic import roles
from clinic.csvutils import csv_response
from clinic.forms import parse_id
from patients import selectors, services
from patients.imports import uploads
from patients.imports.csv_labs import REPORT_HEADER, report_rows
from patients.imports.forms import ConfirmForm, UploadForm
from patients.imports.services import ImportReport, labs_import

SESSION_KEY = "lab_imports"
PREVIEW_PROBLEMS = 50
SHOWN_CRITICAL = 50  # values in a critical range listed on the preview and result pages
_REMEMBERED = 10  # uploads remembered per session


def importer_required(view):
    """Signed in, allowed to enter results, and a member of a clinic (the import's target)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not roles.can_enter_results(request.user):
            raise PermissionDenied
        if request.user.clinic_id is None:
            raise PermissionDenied("Your account belongs to no clinic; use `manage.py import_labs --clinic`.")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _entries(request: HttpRequest) -> dict[str, dict[str, Any]]:
    return request.session.get(SESSION_KEY, {})


def _entry(request: HttpRequest, token: str) -> tuple[dict[str, Any], bytes]:
    """This session's upload and its bytes; 404 for anyone else's token or an expired file."""
    entry = _entries(request).get(token)
    data = uploads.upload_read(token) if entry else None
    if entry is None or data is None:
        raise Http404("This upload is not available any more; upload the file again.")
    return entry, data


def _save_entry(request: HttpRequest, token: str, entry: dict[str, Any]) -> None:
    entries = _entries(request)
    entries[token] = entry
    request.session[SESSION_KEY] = dict(list(entries.items())[-_REMEMBERED:])


def _run(request: HttpRequest, entry: dict[str, Any], data: bytes, *, dry_run: bool) -> ImportReport:
    return labs_import(
        by=request.user,
        clinic=request.user.clinic,
        data=data,
        filename=entry["filename"],
        fmt=entry["format"],
        mrn=entry["mrn"],
        skip_bad_rows=entry["skip_bad_rows"],
        dry_run=dry_run,
    )


def _critical_context(shown: list, count: int) -> dict[str, Any]:
    """For templates/patients/imports/_critical.html."""
    return {"critical": shown, "critical_count": count, "critical_more": count - len(shown)}


@importer_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None, initial={"mrn": request.GET.get("mrn", "")})
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        token = uploads.upload_save(file.read())
        entry = {
            "filename": file.name[:200],
            "format": form.cleaned_data["format"],
            "mrn": form.cleaned_data["mrn"],
            "skip_bad_rows": form.cleaned_data["skip_bad_rows"],
        }
        _save_entry(request, token, entry)
        return redirect("imports:preview", token=token)
    return render(request, "patients/imports/upload.html", {"form": form})


@importer_required
def preview(request: HttpRequest, token: str) -> HttpResponse:
    entry, data = _entry(request, token)
    report = _run(request, entry, data, dry_run=True)
    context = {
        "token": token,
        "entry": entry,
        "report": report,
        "problems": report.problems[:PREVIEW_PROBLEMS],
        "more_problems": max(0, len(report.problems) - PREVIEW_PROBLEMS),
        **_critical_context(report.critical[:SHOWN_CRITICAL], len(report.critical)),
        "form": ConfirmForm(initial={"skip_bad_rows": entry["skip_bad_rows"]}),
    }
    return render(request, "patients/imports/preview.html", context)


@require_POST
@importer_required
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    entry, data = _entry(request, token)
    form = ConfirmForm(request.POST)
    entry["skip_bad_rows"] = form.is_valid() and form.cleaned_data["skip_bad_rows"]
    report = _run(request, entry, data, dry_run=False)
    if report.refused:
        _save_entry(request, token, entry)
        messages.error(
            request,
            report.error
            or f"Nothing was imported: {report.bad_rows} row(s) have problems. Fix them, or skip bad rows.",
        )
        return redirect("imports:preview", token=token)
    entry["result"] = report.summary(max_problems=0, max_critical=SHOWN_CRITICAL)
    _save_entry(request, token, entry)
    return redirect("imports:result", token=token)


@importer_required
def result(request: HttpRequest, token: str) -> HttpResponse:
    entry = _entries(request).get(token)
    if not entry or "result" not in entry:
        raise Http404("No import with this token in your session.")
    result = entry["result"]
    context = {"token": token, "result": result, **_critical_context(result["critical"], result["critical_count"])}
    return render(request, "patients/imports/result.html", context)


@importer_required
def report(request: HttpRequest, token: str) -> HttpResponse:
    """Every problem of the file, as CSV; computed again from the stored file, so it is never stale."""
    entry, data = _entry(request, token)
    problems = _run(request, entry, data, dry_run=True).problems
    return csv_response("import-problems.csv", REPORT_HEADER, report_rows(problems))


DIAGNOSES_PAGE_SIZE = 100


@login_required
def imported_diagnoses(request: HttpRequest) -> HttpResponse:
    """Doctors list the imported diagnoses no clinician has verified, with what their file said, and confirm the
    ones they ticked: confirmed, they become training labels. Any other role gets 403."""
    if not roles.can_confirm_diagnosis(request.user):
        raise PermissionDenied
    if request.method == "POST":
        ids = [pk for pk in map(parse_id, request.POST.getlist("condition")) if pk is not None]
        chosen = selectors.conditions_in_scope(user=request.user, ids=ids)  # another clinic's: 404
        confirmed = services.imported_conditions_confirm(by=request.user, condition_ids=chosen)
        if confirmed:
            noun = "diagnosis" if len(confirmed) == 1 else "diagnoses"
            messages.success(request, f"Confirmed {len(confirmed)} {noun}: training labels from now on.")
        if len(confirmed) < len(chosen):
            messages.info(request, f"{len(chosen) - len(confirmed)} were verified by a clinician meanwhile.")
        if not chosen:
            messages.info(request, "Nothing to confirm: tick at least one diagnosis.")
        return redirect("imports:diagnoses")
    page = Paginator(selectors.imported_conditions_awaiting_for(user=request.user), DIAGNOSES_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    selectors.imported_conditions_awaiting_read(user=request.user, conditions=list(page))
    return render(request, "patients/imports/diagnoses.html", {"page": page})
