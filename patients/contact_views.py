"""Patients contacting their clinic: the patient's form and list of their requests, the team's worklist and the
page where one request is taken on and answered. Thin views over `patients.contact`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from clinic import roles
from clinic.forms import parse_id
from patients import contact
from patients.forms import ContactReplyForm, ContactRequestForm, attach_errors
from patients.models import ContactKind, ContactStatus

PAGE_SIZE = 25
STATUS_BADGES = {ContactStatus.OPEN: "text-bg-warning", ContactStatus.IN_PROGRESS: "text-bg-info",
                 ContactStatus.DONE: "text-bg-success"}  # fmt: skip


@login_required
def contact_new(request: HttpRequest) -> HttpResponse:
    """The patient's form: a question, or an appointment request (about an approved advice item, if chosen)."""
    patient = contact.own_patient_record(user=request.user)
    source = request.POST if request.method == "POST" else request.GET
    item = None
    if patient is not None:
        item = contact.advice_item_for_contact(user=request.user, patient=patient, pk=parse_id(source.get("about", "")))
    if request.method == "POST" and patient is not None:
        form = ContactRequestForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                contact.contact_request_create(
                    patient=patient, by=request.user, kind=data["kind"], message=data["message"],
                    preferred_times=data["preferred_times"], advice_item=item,
                )  # fmt: skip
            except ValidationError as error:
                attach_errors(form, error)
            else:
                messages.success(request, "Sent. The clinic reads requests during opening hours and replies here.")
                return redirect("patients:contact_mine")
    else:
        kind = ContactKind.APPOINTMENT if source.get("kind") == ContactKind.APPOINTMENT else ContactKind.QUESTION
        form = ContactRequestForm(initial={"kind": kind, "about": item.pk if item else None})
        if item is not None:
            contact.advice_item_read(user=request.user, patient=patient, item=item)
    return render(request, "patients/contact_form.html", {"form": form, "patient": patient, "item": item})


@login_required
def contact_mine(request: HttpRequest) -> HttpResponse:
    """The patient's own requests, newest first, with the clinic's replies."""
    patient = contact.own_patient_record(user=request.user)
    requests = contact.my_contact_requests_read(user=request.user, patient=patient) if patient else []
    rows = [{"request": item, "badge": STATUS_BADGES[item.status]} for item in requests]
    return render(request, "patients/contact_mine.html", {"patient": patient, "rows": rows})


@login_required
def request_worklist(request: HttpRequest) -> HttpResponse:
    """The clinic team's worklist: open requests first, the oldest first; filtered by kind and status."""
    if not roles.can_handle_patient_requests(request.user):
        raise PermissionDenied
    filters = contact.WorklistFilters.parse(request.GET)
    page = Paginator(contact.worklist_for(user=request.user, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    contact.worklist_read(user=request.user, rows=page, page_number=page.number, filters=filters)
    context = {
        "page": page,
        "rows": [{"request": item, "badge": STATUS_BADGES[item.status]} for item in page],
        "filters": filters,
        "kinds": ContactKind.choices,
        "statuses": ContactStatus.choices,
    }
    return render(request, "patients/requests.html", context)


@login_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One request in full; its form takes it on or marks it done with the reply the patient reads."""
    contact_request = contact.contact_request_get_for_handling(user=request.user, pk=pk)
    form = ContactReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        action = request.POST.get("action", "")
        try:
            contact.contact_request_handle(
                request=contact_request, by=request.user, action=action, reply=form.cleaned_data["reply"]
            )
        except ValidationError as error:
            attach_errors(form, error)
        else:
            done = action == "done"
            messages.success(request, "Marked done: the patient can read your reply." if done else "Taken on.")
            return redirect(reverse("patients:requests") if done else reverse("patients:request_detail", args=[pk]))
    context = {
        "contact_request": contact_request,
        "badge": STATUS_BADGES[contact_request.status],
        "form": form,
        "finished": contact_request.status == ContactStatus.DONE,
    }
    return render(request, "patients/request_detail.html", context)
