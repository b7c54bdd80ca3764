import zoneinfo

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from clinic import roles, selectors, services
from clinic.admin_filters import DateRangeFilter, PatientIdFilter
from clinic.audit import audit_record
from clinic.csvutils import csv_response
from clinic.models import AuditEvent, Clinic, Role, User


class NotFoundOutsideScopeMixin:
    """An object outside the admin's queryset (another clinic's) is a 404, as everywhere else."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj


class AuditedReadsMixin:
    """Admin pages of patient data audit their reads like the portal: one row per list page (its filters and
    row count), one row per object page naming the patient. `audit_name` prefixes the actions."""

    audit_name = ""

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            filters = {key: values for key, values in request.GET.lists()}
            audit_record(actor=request.user, action=f"{self.audit_name}.list",
                         detail={"filters": filters, "count": changelist.result_count})  # fmt: skip
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        pk = unquote(object_id)
        obj = self.get_object(request, pk)
        if self.has_view_permission(request, obj):
            audit_record(actor=request.user, action=f"{self.audit_name}.view", target=obj, patient_id=obj.patient_id)
        request.audited_object = (pk, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_object(self, request, object_id, from_field=None):
        """The object `change_view` read to audit it, not read a second time to render it."""
        audited = getattr(request, "audited_object", None)
        if from_field is None and audited is not None and audited[0] == object_id:
            return audited[1]
        return super().get_object(request, object_id, from_field)


admin.site.site_header = "Clinic platform administration"
admin.site.site_title = "Clinic admin"


def _time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class ClinicForm(forms.ModelForm):
    # A list to pick from: a name typed by hand is one typo from a clinic whose night falls in its working day.
    time_zone = forms.ChoiceField(choices=_time_zone_choices, help_text=Clinic._meta.get_field("time_zone").help_text)

    class Meta:
        model = Clinic
        fields = ["time_zone"]  # the admin adds the other fields of its fieldsets


@admin.register(Clinic)
class ClinicAdmin(NotFoundOutsideScopeMixin, admin.ModelAdmin):
    form = ClinicForm
    list_display = ["name", "slug", "time_zone", "is_demo", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_demo", "time_zone"]}),
        (
            _("Critical results left unacknowledged"),
            {"fields": ["escalation_minutes", "escalation_contact_minutes", "escalation_contact_email"]},
        ),
    ]
    # Set by `seed_demo` only: ticking it would let a model trained on synthetic data score this clinic's patients.
    readonly_fields = ["is_demo"]

    def get_queryset(self, request):
        return selectors.clinic_list_for(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        """A clinic admin sets their clinic's escalation of critical results; its name and slug stay a superuser's."""
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, "name", "slug"]

    def get_prepopulated_fields(self, request, obj=None):
        return super().get_prepopulated_fields(request, obj) if request.user.is_superuser else {}

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    has_change_permission = has_view_permission

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # patients, accounts and the audit trail refer to it

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="clinic.update" if change else "clinic.create",
            target=obj,
            detail={"changed": {field: str(form.cleaned_data.get(field)) for field in form.changed_data}},
        )


class AccountChangeForm(UserChangeForm):
    def clean(self):
        data = super().clean()
        if data.get("on_duty") and data.get("role") != Role.DOCTOR:
            self.add_error("on_duty", "Only a doctor goes on duty.")
        elif data.get("on_duty") and not data.get("email"):
            self.add_error("on_duty", "A doctor on duty is e-mailed about critical results: add an e-mail address.")
        return data


@admin.register(User)
class UserAdmin(NotFoundOutsideScopeMixin, DjangoUserAdmin):
    """Clinic admins manage the accounts of their own clinic; only superusers see every clinic."""

    list_display = ["username", "first_name", "last_name", "role", "clinic", "is_active", "on_duty", "last_login"]
    list_filter = ["role", "is_active", "on_duty"]
    form = AccountChangeForm
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name", "email"]}),
        (_("Clinic"), {"fields": ["clinic", "role", "is_active", "on_duty"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["username", "role", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]

    def get_queryset(self, request):
        return selectors.user_list_for(user=request.user).select_related("clinic")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, "clinic"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser and obj is not None:
            fieldsets = [*fieldsets, (_("Superuser"), {"fields": ["is_superuser"]})]
        return fieldsets

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    has_change_permission = has_add_permission = has_view_permission

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are deactivated, never deleted: the audit trail refers to them

    def user_change_password(self, request, id, form_url=""):
        """Django's password form; a new password also revokes the account's API tokens."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            services.api_tokens_revoke_all(user=user, by=request.user, reason="password_change")
        return response

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.clinic_id = request.user.clinic_id
        obj.is_staff = obj.is_superuser or obj.role == "admin"
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="user.update" if change else "user.create",
            target=obj,
            detail={"changed": form.changed_data},
        )


@admin.register(AuditEvent)
class AuditEventAdmin(AuditedReadsMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    """Read-only. Filter by user, patient, action, outcome and a date range; export what is filtered. Reading the
    trail is audited like any read of patient data (`audit.list`, `audit.view` naming the event's patient)."""

    audit_name = "audit"

    list_display = ["time", "actor_username", "role", "action", "outcome", "object_type", "object_id", "patient_id"]
    list_filter = [
        ("time", DateRangeFilter),
        ("actor", admin.RelatedOnlyFieldListFilter),
        PatientIdFilter,
        "action",
        "outcome",
    ]
    search_fields = ["actor_username", "action", "object_id", "request_id"]
    list_per_page = 100
    show_full_result_count = False
    actions = ["export_csv"]

    def get_queryset(self, request):
        return selectors.audit_event_list_for(user=request.user).select_related("clinic")

    def has_module_permission(self, request):
        return roles.can_read_audit(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_read_audit(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        fields = [
            "id", "time", "actor_username", "role", "clinic_id", "action", "object_type", "object_id",
            "patient_id", "outcome", "ip_address", "request_id", "detail", "hash",
        ]  # fmt: skip
        audit_record(actor=request.user, action="audit.export", detail={"rows": queryset.count()})
        rows = queryset.order_by("id").values_list(*fields).iterator(chunk_size=2000)
        return csv_response("audit-events.csv", fields, rows)
