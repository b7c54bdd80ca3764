"""The model registry in the Django admin: clinic admins see their clinic's runs, versions and drift reports.

Everything here is read-only; the only writes are the buttons and actions (start training, activate, roll
back, check drift), and each calls one service.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from clinic import roles
from clinic import selectors as clinic_selectors
from clinic.admin import NotFoundOutsideScopeMixin
from mltraining import selectors, services
from mltraining.ml.artifact import ArtifactError
from mltraining.models import DriftReport, ModelStatus, ModelVersion, TrainingRun, TrainingTrigger


def _pretty_json(value) -> str:
    if not value:
        return "-"
    return format_html("<pre style='white-space: pre-wrap; margin: 0'>{}</pre>", json.dumps(value, indent=2))


def _clinic_of_request(request: HttpRequest):
    """The clinic a button acts on: the admin's own, or the one a superuser picked (404 for an unknown id)."""
    if not request.user.is_superuser:
        return request.user.clinic
    return get_object_or_404(clinic_selectors.clinic_list_for(user=request.user), pk=request.POST.get("clinic") or 0)


def _error_text(exc: Exception) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc) or "Not allowed."


class RegistryAdmin(NotFoundOutsideScopeMixin, admin.ModelAdmin):
    """Clinic admins (and superusers) read; nobody adds, edits or deletes rows by hand."""

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    def has_manage_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _post_only(self, request: HttpRequest) -> HttpResponse | None:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_manage_permission(request):
            raise PermissionDenied
        return None


@admin.register(TrainingRun)
class TrainingRunAdmin(RegistryAdmin):
    list_display = ["__str__", "clinic", "status", "trigger", "chosen", "roc_auc", "duration", "progress_percent",
                    "created_at"]  # fmt: skip
    list_filter = ["status", "trigger"]
    list_per_page = 50
    fields = [
        "clinic", "status", "trigger", "requested_by", "progress_percent", "created_at", "started_at", "finished_at",
        "duration", "resends", "resent_at", "model_version_link", "data_summary_pretty", "configuration_pretty",
        "timings_pretty",
    ]  # fmt: skip
    readonly_fields = fields
    LIST_DEFERRED = ["log", "audit", "candidates", "importances", "data_summary", "configuration", "timings", "plots",
                     "error", "reason"]  # fmt: skip

    def get_queryset(self, request):
        runs = selectors.training_run_list_for(user=request.user).select_related("clinic", "requested_by")
        match = request.resolver_match
        if match is not None and match.url_name == "mltraining_trainingrun_changelist":
            runs = runs.defer(*self.LIST_DEFERRED)  # the list needs none of the large text and JSON but metrics
        return runs

    def get_urls(self):
        app, model = self.opts.app_label, self.opts.model_name
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name=f"{app}_{model}_start"),
            path(
                "<path:object_id>/plots/<slug:name>.png",
                self.admin_site.admin_view(self.plot_view),
                name=f"{app}_{model}_plot",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name=f"{app}_{model}_progress",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_start": self.has_manage_permission(request)}
        if request.user.is_superuser:
            extra_context["clinics"] = clinic_selectors.clinic_list_for(user=request.user)
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(selectors.training_run_report(run=obj))
            context["plot_urls"] = [
                (name.replace("_", " ").capitalize(), reverse("admin:mltraining_trainingrun_plot", args=[obj.pk, name]))
                for name in obj.plots
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def start_view(self, request):
        refused = self._post_only(request)
        if refused:
            return refused
        clinic = _clinic_of_request(request)
        try:
            run = services.training_run_request(clinic=clinic, by=request.user, trigger=TrainingTrigger.MANUAL)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return redirect("admin:mltraining_trainingrun_changelist")
        run.refresh_from_db(fields=["status"])
        self.message_user(request, f"{run} for {clinic}: this page follows its progress.", messages.SUCCESS)
        return redirect("admin:mltraining_trainingrun_change", run.pk)

    def plot_view(self, request, object_id, name):
        run = self.get_object(request, object_id)
        if not self.has_view_permission(request, run) or name not in run.plots:
            raise Http404("No such plot.")
        try:
            png = selectors.training_run_plot(run=run, name=name)
        except ArtifactError as exc:
            raise Http404(str(exc)) from exc
        return HttpResponse(png, content_type="image/png")

    def progress_view(self, request, object_id):
        """What the run's page polls while it trains (status and share done only: no patient data, no audit row)."""
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise Http404("No such run.")
        return JsonResponse(
            {"finished": not run.in_progress, "status_display": run.get_status_display(), "progress": run.progress}
        )

    @admin.display(description="Macro ROC-AUC")
    def roc_auc(self, run):
        value = (run.metrics.get("test") or {}).get("roc_auc_ovr_macro")
        return "-" if value is None else f"{value:.3f}"

    @admin.display(description="Duration")
    def duration(self, run):
        seconds = run.duration_seconds
        return "-" if seconds is None else f"{seconds:.0f} s"

    @admin.display(description="Progress")
    def progress_percent(self, run):
        return f"{run.progress:.0%}"

    @admin.display(description="Model version")
    def model_version_link(self, run):
        version = getattr(run, "model_version", None)
        if version is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:mltraining_modelversion_change", args=[version.pk]), version
        )

    @admin.display(description="Data")
    def data_summary_pretty(self, run):
        return _pretty_json(run.data_summary)

    @admin.display(description="Configuration")
    def configuration_pretty(self, run):
        return _pretty_json(run.configuration)

    @admin.display(description="Timings (seconds)")
    def timings_pretty(self, run):
        return _pretty_json(run.timings)


@admin.register(ModelVersion)
class ModelVersionAdmin(RegistryAdmin):
    list_display = ["__str__", "clinic", "version", "status", "chosen", "roc_auc", "rows", "training_data",
                    "activated_at", "activated_by", "created_at", "card_link"]  # fmt: skip
    list_filter = ["status"]
    list_per_page = 50
    actions = ["activate", "rollback"]
    fields = [
        "clinic", "version", "status", "training_run_link", "card_link", "activated_at", "activated_by",
        "activation_reason", "created_at", "training_data", "rows", "classes", "data_hash", "artifact", "explainer",
        "sha256",
        "sklearn_version", "library_versions_pretty", "risk_thresholds",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            selectors.model_version_list_for(user=request.user)
            .select_related("clinic", "activated_by")
            .annotate(chosen=F("training_run__chosen"))
            .defer("reference_profile", "feature_schema")
        )

    def get_urls(self):
        app, model = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name=f"{app}_{model}_activate",
            ),
            path(
                "<path:object_id>/rollback/",
                self.admin_site.admin_view(self.rollback_view),
                name=f"{app}_{model}_rollback",
            ),
            path(
                "<path:object_id>/compare/",
                self.admin_site.admin_view(self.compare_view),
                name=f"{app}_{model}_compare",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_manage"] = self.has_manage_permission(request)
            context["can_activate"] = obj.status in (ModelStatus.CANDIDATE, ModelStatus.ARCHIVED)
            context["can_rollback"] = obj.status == ModelStatus.ARCHIVED
            context["card_url"] = reverse("mltraining:model_card", args=[obj.pk])
            context["compare_url"] = reverse("admin:mltraining_modelversion_compare", args=[obj.pk])
            context.update(selectors.model_version_report(version=obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    # What each switch is called on its confirmation page, and what it says when done.
    SWITCHES = {
        "activate": ("Activate", "is active now", services.model_version_activate),
        "rollback": ("Roll back to", "is active again", services.model_version_rollback),
    }

    def _switch_selected(self, request, queryset, name: str):
        """The changelist action only picks the version: the switch itself asks for confirmation and a reason."""
        versions = list(queryset.values_list("pk", flat=True)[:2])
        if len(versions) != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return None
        return redirect(f"admin:mltraining_modelversion_{name}", versions[0])

    @admin.action(description="Activate the selected version", permissions=["manage"])
    def activate(self, request, queryset):
        return self._switch_selected(request, queryset, "activate")

    @admin.action(description="Roll back to the selected version", permissions=["manage"])
    def rollback(self, request, queryset):
        return self._switch_selected(request, queryset, "rollback")

    def _switch_view(self, request, object_id, name: str):
        """GET: what will change, and a reason to give. POST with a reason: switch, audited with that reason."""
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        version = self.get_object(request, object_id)
        if not self.has_manage_permission(request):
            raise PermissionDenied
        verb, done, service = self.SWITCHES[name]
        error, reason = "", ""
        if request.method == "POST":
            reason = request.POST.get("reason", "")
            try:
                version = service(version=version, by=request.user, reason=reason)
            except (ValidationError, PermissionDenied) as exc:
                error = _error_text(exc)
            else:
                self.message_user(
                    request, f"{version} of {version.clinic} {done}; the previous active version is archived."
                )
                return redirect("admin:mltraining_modelversion_change", version.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{verb} {version}?",
            "version": version,
            "active": selectors.model_version_active_of(clinic_id=version.clinic_id),
            "verb": verb,
            "error": error,
            "reason": reason,
        }
        return TemplateResponse(request, "admin/mltraining/modelversion/confirm_switch.html", context)

    def activate_view(self, request, object_id):
        return self._switch_view(request, object_id, "activate")

    def rollback_view(self, request, object_id):
        return self._switch_view(request, object_id, "rollback")

    def compare_view(self, request, object_id):
        """Two versions of one clinic side by side; a version of another clinic is not there to compare (404)."""
        version = self.get_object(request, object_id)
        others = selectors.model_versions_comparable(version=version)
        other = None
        if request.GET.get("with"):
            other = get_object_or_404(
                self.get_queryset(request).filter(clinic_id=version.clinic_id).exclude(pk=version.pk),
                pk=request.GET["with"] if request.GET["with"].isdigit() else 0,
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Compare {version}" + (f" with {other}" if other else ""),
            "version": version,
            "others": others,
            "other": other,
        }
        if other is not None:
            context.update(selectors.model_versions_compare(a=version, b=other))
        return TemplateResponse(request, "admin/mltraining/modelversion/compare.html", context)

    @admin.display(description="Chosen model")
    def chosen(self, version):
        return getattr(version, "chosen", None) or version.training_run.chosen

    def progress_view(self, request, object_id):
        """What the run's page polls while it trains (status and share done only: no patient data, no audit row)."""
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise Http404("No such run.")
        return JsonResponse(
            {"finished": not run.in_progress, "status_display": run.get_status_display(), "progress": run.progress}
        )

    @admin.display(description="Macro ROC-AUC")
    def roc_auc(self, version):
        value = version.roc_auc
        return "-" if value is None else f"{value:.3f}"

    @admin.display(description="Trained on")
    def training_data(self, version):
        return version.training_data

    @admin.display(description="Model card")
    def card_link(self, version):
        return format_html('<a href="{}">Model card</a>', reverse("mltraining:model_card", args=[version.pk]))

    @admin.display(description="Training run")
    def training_run_link(self, version):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:mltraining_trainingrun_change", args=[version.training_run_id]),
            f"Training run #{version.training_run_id}",
        )

    @admin.display(description="Library versions")
    def library_versions_pretty(self, version):
        return _pretty_json(version.library_versions)


@admin.register(DriftReport)
class DriftReportAdmin(RegistryAdmin):
    list_display = ["__str__", "clinic", "model_version", "window_days", "n_recent", "overall_band", "created_at"]
    list_filter = ["overall_band"]
    list_per_page = 50
    fields = ["clinic", "model_version", "created_at", "window_days", "n_recent", "overall_band"]
    readonly_fields = fields

    def get_queryset(self, request):
        reports = selectors.drift_report_list_for(user=request.user).select_related("clinic", "model_version")
        return reports.defer(*selectors.version_detail_deferred("model_version"))

    def get_urls(self):
        app, model = self.opts.app_label, self.opts.model_name
        return [path("check/", self.admin_site.admin_view(self.check_view), name=f"{app}_{model}_check"),
                *super().get_urls()]  # fmt: skip

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_check": self.has_manage_permission(request)}
        if request.user.is_superuser:
            extra_context["clinics"] = clinic_selectors.clinic_list_for(user=request.user)
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["feature_rows"] = selectors.drift_feature_rows(report=obj)
            context["prediction_rows"] = selectors.drift_prediction_rows(report=obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def check_view(self, request):
        refused = self._post_only(request)
        if refused:
            return refused
        clinic = _clinic_of_request(request)
        try:
            report = services.drift_check(clinic=clinic, by=request.user)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return redirect("admin:mltraining_driftreport_changelist")
        return redirect("admin:mltraining_driftreport_change", report.pk)
