"""Advice in the Django admin: the catalog, recommendations with their items, feedback and rankers.

Clinic admins read their clinic's rows; nobody edits recommendations or feedback by hand (decisions are made
in the review pages, which write the feedback and audit rows). The catalog's `active` flag is the one edit,
for superusers: an inactive item is no longer generated. "Rebuild ranker now" refits the clinic's ranker.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path

from clinic import roles
from clinic.admin import AuditedReadsMixin, NotFoundOutsideScopeMixin
from predictions.admin import ClinicAdminOnly
from recommendations import services
from recommendations.models import AdviceItem, FeedbackEvent, RankerSnapshot, Recommendation, RecommendationItem


def _scoped(queryset, request: HttpRequest):
    return queryset if request.user.is_superuser else queryset.filter(clinic_id=request.user.clinic_id)


@admin.register(AdviceItem)
class AdviceItemAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "category", "active"]
    list_filter = ["category", "active"]
    search_fields = ["code", "title"]
    readonly_fields = ["code", "title", "patient_text", "clinician_text", "category", "source"]

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False  # items come from data migrations, with their citations

    def has_delete_permission(self, request, obj=None):
        return False


class RecommendationItemInline(ClinicAdminOnly, admin.TabularInline):
    model = RecommendationItem
    fields = ["position", "advice", "severity", "pinned", "status", "rule", "probability", "lift", "reviewed_by",
              "override_reason", "rationale"]  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Recommendation)
class RecommendationAdmin(ClinicAdminOnly, AuditedReadsMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    audit_name = "recommendation"
    list_display = ["created_at", "patient", "headline", "severity", "pending", "rules_version", "ranker_version"]
    list_filter = ["headline", "severity"]
    search_fields = ["=patient__mrn"]
    search_help_text = "Exact MRN."
    actions = None
    list_per_page = 50
    show_full_result_count = False
    fields = ["patient", "prediction", "created_at", "headline", "severity", "pending", "rationale", "rules_version",
              "ranker_version", "fingerprint"]  # fmt: skip
    readonly_fields = fields
    inlines = [RecommendationItemInline]

    def get_queryset(self, request):
        return _scoped(super().get_queryset(request), request).select_related("patient")


@admin.register(FeedbackEvent)
class FeedbackEventAdmin(ClinicAdminOnly, AuditedReadsMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    audit_name = "feedback"
    list_display = ["created_at", "clinician", "action", "outcome", "advice", "override_reason", "position", "patient"]
    list_filter = ["action", "outcome", "override_reason"]
    actions = None
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = ["created_at", "clinician", "action", "outcome", "advice", "override_reason", "comment",
                       "position", "patient", "item"]  # fmt: skip
    fields = readonly_fields

    def get_queryset(self, request):
        return _scoped(super().get_queryset(request), request).select_related("clinician", "advice", "patient")


@admin.register(RankerSnapshot)
class RankerSnapshotAdmin(ClinicAdminOnly, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    list_display = ["clinic", "version", "created_at", "events", "patients"]
    actions = None
    fields = ["clinic", "version", "created_at", "events", "patients", "params"]
    readonly_fields = fields

    def get_queryset(self, request):
        return _scoped(super().get_queryset(request), request).defer("data")

    def get_urls(self):
        app, model = self.opts.app_label, self.opts.model_name
        return [
            path("rebuild/", self.admin_site.admin_view(self.rebuild_view), name=f"{app}_{model}_rebuild"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_rebuild": roles.can_manage_clinic(request.user)}
        return super().changelist_view(request, extra_context)

    def rebuild_view(self, request: HttpRequest) -> HttpResponse:
        """Refit the ranker of the admin's clinic now (a superuser: of every clinic with feedback)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not roles.can_manage_clinic(request.user):
            raise PermissionDenied
        if request.user.is_superuser:
            rebuilt = services.rankers_rebuild_all()
            self.message_user(request, f"Rebuilt the rankers of {len(rebuilt)} clinic(s).")
        else:
            snapshot = services.ranker_rebuild(clinic_id=request.user.clinic_id)
            if snapshot is None:
                self.message_user(request, "Not enough review decisions yet to learn from.", messages.WARNING)
            else:
                self.message_user(request, f"Ranker v{snapshot.version} learned from {snapshot.events} decisions.")
        return redirect("admin:recommendations_rankersnapshot_changelist")
