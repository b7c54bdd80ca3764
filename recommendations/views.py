"""Advice in the portal: the doctors' review queue and review page, the advice card of the patient page,
the patient's own approved advice, and the clinic's standing protocols. Thin: scope through selectors, decide
through one service call."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from clinic import charts, roles
from clinic.forms import parse_id
from clinic.models import User
from patients.contact import APPOINTMENT_CATEGORIES
from patients.models import Patient
from predictions.selectors import risk_summary
from recommendations import dashboard, protocols, selectors, services
from recommendations.forms import ProtocolForm
from recommendations.models import OFFERED_OVERRIDE_REASONS, Category, Headline, ItemStatus, Recommendation, Severity

PAGE_SIZE = 25


class _CountedPaginator(Paginator):
    """Pages of `rows` counted on `counted`, the same rows without the columns they show: the count of the queue's
    named tuples would keep their join to the patients, which the count of its recommendations drops."""

    def __init__(self, rows, per_page: int, *, counted) -> None:
        super().__init__(rows, per_page)
        self.counted = counted

    @cached_property
    def count(self) -> int:
        return self.counted.count()


SEVERITY_BADGES = {0: "text-bg-light", 1: "text-bg-info", 2: "text-bg-warning", 3: "text-bg-danger",
                   4: "text-bg-dark"}  # fmt: skip
STATUS_BADGES = {"pending": "text-bg-secondary", "approved": "text-bg-success", "rejected": "text-bg-danger",
                 "superseded": "text-bg-light"}  # fmt: skip
HEADLINE_ALERTS = {"no_action_needed": "alert-success", "lifestyle_changes": "alert-warning",
                   "consult_professional": "alert-danger"}  # fmt: skip


def _item_rows(items) -> list[dict[str, Any]]:
    return [
        {
            "item": item,
            "badge": SEVERITY_BADGES.get(item.severity, ""),
            "status_badge": STATUS_BADGES.get(item.status, ""),
        }
        for item in items
    ]


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(message for messages_ in exc.message_dict.values() for message in messages_)
    return " ".join(exc.messages)


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    if not roles.can_review_advice(request.user):
        raise PermissionDenied("Only doctors review advice.")
    filters = selectors.QueueFilters.parse(request.GET)
    queue = selectors.review_queue_page_for(user=request.user, filters=filters)
    page = _CountedPaginator(queue, PAGE_SIZE, counted=selectors.review_queue_for(user=request.user, filters=filters))
    page = page.get_page(request.GET.get("page"))
    selectors.review_queue_read(user=request.user, page_number=page.number, rows=page, filters=filters)
    waiting = selectors.waiting_items_of(recommendation_ids=[rec.pk for rec in page])
    rows = [{"rec": rec, "badge": SEVERITY_BADGES.get(rec.severity, ""), "waiting": waiting[rec.pk]} for rec in page]
    kept = {key: value for key, value in filters.__dict__.items() if value not in ("", None)}
    context = {
        "page": page,
        "rows": rows,
        "rows_html": _queue_rows(rows),
        "filters": filters,
        "severities": Severity.choices,
        "headlines": Headline.choices,
        "categories": Category.choices,
        "orderings": [("severity", "Most severe first"), ("oldest", "Oldest first"), ("newest", "Newest first")],
        "querystring": urlencode(kept) + "&" if kept else "",
    }
    return render(request, "recommendations/queue.html", context)


QUEUE_ROW = (
    '<tr data-testid="queue-row">'
    '<td><input class="form-check-input" type="checkbox" name="recommendation" value="{}" aria-label="Select {}"></td>'
    '<td><a href="{}">{}</a><div class="small text-body-secondary">MRN {}</div></td>'
    "<td>{}</td>"
    '<td><span class="badge {}">{}</span></td>'
    '<td class="small">{}</td>'
    '<td class="text-nowrap small" title="{}">{} ago</td>'
    '<td><a class="btn btn-sm btn-primary" href="{}">Review</a></td>'
    "</tr>"
)
HEADLINE_LABELS = dict(Headline.choices)
SEVERITY_LABELS = dict(Severity.choices)


def _queue_rows(rows: list[dict[str, Any]]) -> SafeString:
    """The queue's table rows, escaped as a template would: built here, as the admin builds its changelist rows,
    because a template loop's tags and filters cost about 0.1 ms a row, a large share of the page's own work
    (bench/README.md). The two addresses of a row are reversed once for the page, not twice a row, and the clinic's
    time zone looked up once."""
    patient_url = reverse("patients:detail", args=[0]).removesuffix("0/")  # ".../patients/" + "<pk>/"
    review_url = reverse("recommendations:review", args=[0]).removesuffix("0/")
    zone, now = timezone.get_current_timezone(), timezone.now()
    return format_html_join("\n", QUEUE_ROW, (_queue_cells(row, patient_url, review_url, zone, now) for row in rows))


def _queue_cells(
    row: dict[str, Any], patient_url: str, review_url: str, zone: datetime.tzinfo, now: datetime.datetime
) -> tuple[Any, ...]:
    rec = row["rec"]
    name = f"{rec.patient__given_name} {rec.patient__family_name}"  # as `Patient.full_name`
    headline = HEADLINE_LABELS.get(rec.headline, rec.headline)
    waiting = format_html_join(
        "",
        '<span class="d-block">{}</span>',
        ((format_html("<strong>{}</strong>", item.advice__title) if item.pinned else item.advice__title,)
         for item in row["waiting"]),
    )  # fmt: skip
    return (
        rec.pk, name,
        f"{patient_url}{rec.patient_id}/", name, rec.patient__mrn,
        headline,
        row["badge"], SEVERITY_LABELS.get(rec.severity, rec.severity),
        waiting or headline,  # nothing waiting besides the headline
        f"{rec.created_at.astimezone(zone):%Y-%m-%d %H:%M}", timesince(rec.created_at, now),
        f"{review_url}{rec.pk}/",
    )  # fmt: skip


@login_required
def recommendation_review(request: HttpRequest, pk: int) -> HttpResponse:
    recommendation = selectors.recommendation_get_for_review(user=request.user, pk=pk)
    evidence = selectors.review_evidence_for(recommendation=recommendation)
    # ".../items/", reversed once a page: an item's forms post to <pk>/approve/, <pk>/reject/, <pk>/edit/, ...
    items_url = reverse("recommendations:item_approve", args=[0]).removesuffix("0/approve/")
    rows = [
        {**row, "evidence": evidence[row["item"].pk], "action": f"{items_url}{row['item'].pk}/"}
        for row in _item_rows(recommendation.items.all())
    ]
    context = {
        "rec": recommendation,
        "predicted": _model_summary(recommendation),
        "training_data": _training_data(recommendation),
        "rows": rows,
        "reasons": OFFERED_OVERRIDE_REASONS,
        "badge": SEVERITY_BADGES.get(recommendation.severity, ""),
        "headline_alert": HEADLINE_ALERTS.get(recommendation.headline, "alert-secondary"),
        "next": request.GET.get("next", ""),
    }
    return render(request, "recommendations/review.html", context)


def _model_summary(recommendation: Recommendation) -> str:
    """The model's finding as every page words it (`predictions.selectors.risk_summary`), from the prediction the
    advice came from; empty for advice from the guideline rules alone."""
    rationale = recommendation.rationale
    if not rationale.get("predicted_class"):
        return ""
    return risk_summary(
        probabilities=recommendation.prediction.probabilities, risk_level=rationale.get("risk_level", "")
    )


def _training_data(recommendation: Recommendation) -> str:
    """What the model behind the advice was trained on, as stored with the advice (or, for advice stored before that
    was kept, as its model version says); empty for advice from the guideline rules alone."""
    if not recommendation.rationale.get("predicted_class"):
        return ""
    version = recommendation.prediction.model_version
    return recommendation.rationale.get("training_data") or (version.training_data if version else "")


def _back(recommendation_id: int) -> HttpResponse:
    return redirect(reverse("recommendations:review", args=[recommendation_id]) + "#items")


@login_required
@require_POST
def item_decide(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One decision on one item: approve, reject, edit or annotate (the URL names the action)."""
    item = selectors.item_get_for_review(user=request.user, pk=pk)
    post = request.POST
    try:
        if action == "approve":
            services.item_approve(item=item, by=request.user, patient_text=post.get("patient_text"))
            messages.success(request, f"Approved: {item.advice.title}.")
        elif action == "reject":
            services.item_reject(item=item, by=request.user, reason=post.get("reason", ""),
                                 comment=post.get("comment", ""))  # fmt: skip
            messages.success(request, f"Rejected: {item.advice.title}.")
        elif action == "edit":
            services.item_edit(item=item, by=request.user, patient_text=post.get("patient_text", ""))
            messages.success(request, f"Patient text saved: {item.advice.title}.")
        else:
            services.item_annotate(item=item, by=request.user, note=post.get("note", ""))
            messages.success(request, f"Note saved: {item.advice.title}.")
    except ValidationError as exc:
        messages.error(request, f"{item.advice.title}: {_errors(exc)}")
    return _back(item.recommendation_id)


@login_required
@require_POST
def bulk_approve(request: HttpRequest) -> HttpResponse:
    """Approve every pending item of the recommendations ticked in the queue."""
    if not roles.can_review_advice(request.user):
        raise PermissionDenied("Only doctors review advice.")
    ids = [pk for pk in map(parse_id, request.POST.getlist("recommendation")) if pk is not None]
    item_ids = selectors.pending_item_ids_of(user=request.user, recommendation_ids=ids)
    approved = services.items_approve(item_ids=item_ids, by=request.user)
    if approved:
        messages.success(request, f"Approved {approved} item{'s' if approved != 1 else ''} of {len(ids)} patients.")
    else:
        messages.info(request, "Nothing to approve: tick at least one patient with pending advice.")
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url.startswith("/advice/") else reverse("recommendations:queue"))


@login_required
def my_advice(request: HttpRequest) -> HttpResponse:
    patient, advice = selectors.my_advice_read(user=request.user)
    context = {"patient": patient, "advice": advice, "appointment_categories": APPOINTMENT_CATEGORIES}
    return render(request, "recommendations/my_advice.html", context)


def advice_card(*, user: User, patient: Patient) -> dict[str, Any] | None:
    """The advice card of the patient page: the latest recommendation and its review status for the clinical
    team; only the approved items for the patient's own account."""
    if roles.is_patient(user):
        return {"patient_view": True, "items": selectors.approved_advice_for(user=user, patient=patient)}
    recommendation: Recommendation | None = selectors.latest_recommendation_for(
        user=user, patient=patient, reviewers=False
    )
    if recommendation is None:
        return {"patient_view": False, "rec": None}
    rows = _item_rows(recommendation.items.all())
    return {
        "patient_view": False,
        "rec": recommendation,
        "rows": rows,
        "pending": sum(row["item"].status == ItemStatus.PENDING for row in rows),
        "can_review": roles.can_review_advice(user),
        "headline_alert": HEADLINE_ALERTS.get(recommendation.headline, "alert-secondary"),
    }


@login_required
def review_dashboard(request: HttpRequest) -> HttpResponse:
    """How the clinic's doctors decide on advice, as charts, each downloadable as CSV (doctors and admins)."""
    board = dashboard.review_dashboard_read(user=request.user, download=request.GET.get("download", ""))
    context = {"board": board, "can_review": roles.can_review_advice(request.user)}
    csv = charts.download(request, board.charts, "review-dashboard")
    return csv or render(request, "recommendations/dashboard.html", context)


# --- standing protocols -------------------------------------------------------------------------------------------

PROTOCOL_BADGES = {"active": "text-bg-success", "scheduled": "text-bg-info", "ended": "text-bg-secondary",
                   "revoked": "text-bg-danger"}  # fmt: skip


def _ensure_doctor(user: User) -> None:
    if not roles.can_review_advice(user):
        raise PermissionDenied("Only doctors sign standing protocols.")


@login_required
def protocol_list(request: HttpRequest) -> HttpResponse:
    """The clinic's standing protocols: in force (active or scheduled), then ended, then revoked."""
    _ensure_doctor(request.user)
    today = timezone.localdate()
    groups: dict[str, list[dict[str, Any]]] = {"current": [], "ended": [], "revoked": []}
    for protocol in protocols.protocol_list_for(user=request.user):
        status = protocol.status_on(today)
        group = "current" if status in ("active", "scheduled") else status
        groups[group].append({"protocol": protocol, "status": status, "badge": PROTOCOL_BADGES[status]})
    return render(request, "recommendations/protocol_list.html", {"groups": groups})


@login_required
def protocol_sign(request: HttpRequest) -> HttpResponse:
    _ensure_doctor(request.user)
    form = ProtocolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            protocol = protocols.protocol_sign(by=request.user, **form.sign_arguments())
        except ValidationError as exc:
            form.show(exc)
        else:
            released = protocol.released_now
            now = f" Released {released:,} waiting item{pluralize(released)} under it." if released else ""
            messages.success(request, f"Signed: {protocol.title}.{now}")
            return redirect("recommendations:protocols")
    return render(request, "recommendations/protocol_form.html", {"form": form})


@login_required
@require_POST
def protocol_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = protocols.protocol_get_for(user=request.user, pk=pk)
    try:
        protocols.protocol_revoke(protocol=protocol, by=request.user, reason=request.POST.get("reason", ""))
        messages.success(request, f"Revoked: {protocol.title}. It releases nothing more.")
    except ValidationError as exc:
        messages.error(request, f"{protocol.title}: {_errors(exc)}")
    return redirect("recommendations:protocols")


@login_required
@require_POST
def protocol_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Release what an active protocol covers among the advice waiting now."""
    protocol = protocols.protocol_get_for(user=request.user, pk=pk)
    try:
        released = protocols.protocol_apply_waiting(protocol=protocol, by=request.user)
        messages.success(request, f"{protocol.title}: released {released:,} waiting item{pluralize(released)}.")
    except ValidationError as exc:
        messages.error(request, f"{protocol.title}: {_errors(exc)}")
    return redirect("recommendations:protocols")
