"""The unmatched results worklist: results a lab sent for a patient it did not identify, filed by staff."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from labfeed import selectors, services
from labfeed.forms import ResolveForm
from labfeed.models import UnmatchedStatus
from labfeed.services import Planned
from patients.catalog import catalog
from patients.forms import attach_errors
from patients.selectors import patient_mrn_holder


@login_required
def unmatched_list(request: HttpRequest) -> HttpResponse:
    waiting = selectors.unmatched_waiting_read(user=request.user)
    return render(request, "labfeed/unmatched_list.html", {"waiting": waiting})


def _rows(held) -> list[dict]:
    spec_of = catalog().by_code
    rows = []
    for planned in map(Planned.from_json, held.results):
        spec = spec_of[planned.analyte]
        value = "" if planned.value is None else f"{planned.entered_value:g} {planned.entered_unit}"
        rows.append({"label": planned.label, "name": spec.name, "value": value, "status": planned.status,
                     "status_text": services.STATUSES[planned.status], "effective_at": planned.effective_at,
                     "lab_flag": planned.lab_flag})  # fmt: skip
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def unmatched_detail(request: HttpRequest, pk: int) -> HttpResponse:
    held = selectors.unmatched_read(user=request.user, pk=pk)
    form = ResolveForm(request.POST or None)
    if request.method == "POST" and held.status == UnmatchedStatus.WAITING and form.is_valid():
        mrn = form.cleaned_data["mrn"].strip()
        patient = patient_mrn_holder(clinic_id=held.clinic_id, mrn=mrn)
        if patient is None:
            form.add_error("mrn", f"No patient with MRN {mrn} in this clinic: register them first.")
        else:
            try:
                tally = services.unmatched_resolve(unmatched=held, by=request.user, patient=patient)
            except ValidationError as error:
                attach_errors(form, error)
            else:
                messages.success(request, f"{len(held.results)} result(s) filed to {patient}: {tally.created} new, "
                                 f"{tally.critical} critical.")  # fmt: skip
                return redirect("patients:detail", patient.pk)
    return render(request, "labfeed/unmatched_detail.html", {"held": held, "rows": _rows(held), "form": form})
