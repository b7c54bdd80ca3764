"""Predictions and batches in the Django admin: clinic admins see their clinic's, superusers every clinic's.

Everything is read-only; the one write is the "Score all patients" button on the batch list, which calls
`services.prediction_batch_start`. Doctors and staff are not admin staff and never reach any of it.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from clinic import roles
from clinic import selectors as clinic_selectors
from clinic.admin import AuditedReadsMixin, NotFoundOutsideScopeMixin
from mltraining.selectors import VERSION_DETAIL_FIELDS, model_version_list_for, version_detail_deferred
from predictions import selectors, services
from predictions.models import BatchTrigger, Prediction, PredictionBatch, PredictionChunk


def _pretty_json(value) -> str:
    if not value:
        return "-"
    return format_html("<pre style='white-space: pre-wrap; margin: 0'>{}</pre>", json.dumps(value, indent=2))


class ModelVersionFilter(admin.RelatedFieldListFilter):
    """The versions the admin's clinic has trained (every clinic's for a superuser), from the few version rows.

    Django's RelatedOnlyFieldListFilter would list the versions that appear among the predictions: a DISTINCT over
    all of them, most of a second at 600,000 predictions, on every view of the list.
    """

    def field_choices(self, field, request, model_admin):
        versions = model_version_list_for(user=request.user).defer(*VERSION_DETAIL_FIELDS)
        if request.user.is_superuser:
            versions = versions.select_related("clinic").order_by("clinic__name", "-version")
            return [(version.pk, f"{version.clinic.name}: {version}") for version in versions]
        return [(version.pk, str(version)) for version in versions.order_by("-version")]


class ClinicAdminOnly:
    """Clinic admins (and superusers) read; nobody adds, edits or deletes rows by hand."""

    def has_module_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PredictionChunkInline(ClinicAdminOnly, admin.TabularInline):
    model = PredictionChunk
    fields = ["index", "status", "attempts", "patients", "seconds", "finished_at", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="Patients")
    def patients(self, chunk):
        return len(chunk.patient_ids)


@admin.register(PredictionBatch)
class PredictionBatchAdmin(ClinicAdminOnly, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    list_display = ["name", "clinic", "status", "progress_percent", "done", "failed", "total", "chunks", "duration",
                    "model_version", "requested_by", "trigger", "created_at"]  # fmt: skip
    list_filter = ["status", "trigger"]
    list_per_page = 50
    show_full_result_count = False
    actions = None  # read-only: nothing to act on; "Score all patients" is a button on the changelist
    fields = [
        "clinic", "status", "trigger", "requested_by", "model_version", "progress_page", "progress_percent", "done",
        "failed", "total", "chunks_finished", "chunks_total", "created_at", "started_at", "finished_at", "duration",
        "resends", "resent_at", "error",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [PredictionChunkInline]

    def get_queryset(self, request):
        return selectors.batch_list_shown_for(user=request.user)

    def get_urls(self):
        app, model = self.opts.app_label, self.opts.model_name
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name=f"{app}_{model}_start"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_start": roles.can_manage_clinic(request.user),
            "portal_url": reverse("predictions:batch_list"),
        }
        if request.user.is_superuser:
            extra_context["clinics"] = clinic_selectors.clinic_list_for(user=request.user)
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["auto_refresh"] = obj.status in selectors.UNFINISHED
        return super().render_change_form(request, context, add, change, form_url, obj)

    def start_view(self, request: HttpRequest) -> HttpResponse:
        """ "Score all patients" of the admin's clinic (a superuser picks one)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not roles.can_manage_clinic(request.user):
            raise PermissionDenied
        if request.user.is_superuser:
            clinics = clinic_selectors.clinic_list_for(user=request.user)
            clinic = get_object_or_404(clinics, pk=request.POST.get("clinic") or 0)
        else:
            clinic = request.user.clinic
        try:
            batch = services.prediction_batch_start(clinic=clinic, by=request.user, trigger=BatchTrigger.ADMIN)
        except (ValidationError, PermissionDenied) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc) or "Not allowed."
            self.message_user(request, text, messages.ERROR)
            return redirect("admin:predictions_predictionbatch_changelist")
        self.message_user(request, f"Scoring {batch.total:,} patients of {clinic} in {batch.chunks_total:,} chunks.")
        return redirect("admin:predictions_predictionbatch_change", batch.pk)

    @admin.display(description="Batch", ordering="pk")
    def name(self, batch):
        return f"Batch #{batch.pk}"

    @admin.display(description="Progress")
    def progress_percent(self, batch):
        return f"{batch.progress:.0%}"

    @admin.display(description="Chunks")
    def chunks(self, batch):
        return f"{batch.chunks_finished}/{batch.chunks_total}"

    @admin.display(description="Duration")
    def duration(self, batch):
        seconds = selectors.batch_elapsed_seconds(batch)
        return "-" if seconds is None else f"{seconds:,.1f} s"

    @admin.display(description="Live progress")
    def progress_page(self, batch):
        return format_html(
            '<a href="{}">Progress page (updates live)</a>', reverse("predictions:batch_detail", args=[batch.pk])
        )


@admin.register(Prediction)
class PredictionAdmin(ClinicAdminOnly, AuditedReadsMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    list_display = ["created_at", "patient_mrn", "predicted", "risk_level", "risk_score", "model_version",
                    "batch_label", "status"]  # fmt: skip
    list_filter = ["status", "risk_level", ("model_version", ModelVersionFilter)]
    search_fields = ["=patient__mrn"]
    search_help_text = "Exact MRN."
    actions = None
    list_per_page = 50
    show_full_result_count = False
    fields = [
        "patient", "patient_mrn", "created_at", "status", "error", "predicted", "risk_level", "risk_score",
        "risk_thresholds", "model_version", "batch", "explanation_method", "probabilities_pretty",
        "contributions_pretty", "inputs_pretty",
    ]  # fmt: skip
    readonly_fields = fields
    LIST_DEFERRED = ["inputs", "contributions", "probabilities"]
    audit_name = "prediction"

    def get_queryset(self, request):
        predictions = (
            selectors.prediction_admin_list_for(user=request.user)
            .select_related("patient", "model_version")
            .defer(*version_detail_deferred("model_version"))
        )
        match = request.resolver_match
        if match is not None and match.url_name == "predictions_prediction_changelist":
            predictions = predictions.defer(*self.LIST_DEFERRED)
        return predictions

    @admin.display(description="MRN", ordering="patient__mrn")
    def patient_mrn(self, prediction):
        return prediction.patient.mrn

    @admin.display(description="Predicted class")
    def predicted(self, prediction):
        return selectors.class_display(prediction.predicted_class) if prediction.predicted_class else "-"

    @admin.display(description="Batch", ordering="batch")
    def batch_label(self, prediction):
        return f"Batch #{prediction.batch_id}" if prediction.batch_id else "Online"

    @admin.display(description="Probabilities")
    def probabilities_pretty(self, prediction):
        return _pretty_json(prediction.probabilities)

    @admin.display(description="Top contributions")
    def contributions_pretty(self, prediction):
        return _pretty_json(prediction.contributions)

    @admin.display(description="Inputs")
    def inputs_pretty(self, prediction):
        return _pretty_json(prediction.inputs)
