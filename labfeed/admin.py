"""Clinic admins set up their labs' connections and code maps here, and read the message log (audited: messages
carry patient data). Superusers see every clinic's, and the messages of senders no connection knows."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils.text import capfirst

from clinic import roles
from clinic import selectors as clinic_selectors
from clinic.admin import NotFoundOutsideScopeMixin
from clinic.audit import audit_record
from labfeed import services
from labfeed.models import HL7Message, LabCodeMap, LabConnection


class ClinicAdminOnly:
    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)


class LabCodeMapInline(ClinicAdminOnly, admin.TabularInline):
    model = LabCodeMap
    extra = 1
    fields = ["local_code", "local_text", "analyte"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """A tabular inline's inputs sit under a column heading, not a <label>: each is named for screen readers."""
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is not None:
            formfield.widget.attrs.setdefault("aria-label", capfirst(db_field.verbose_name))
        return formfield

    def has_add_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    has_change_permission = has_delete_permission = has_add_permission


@admin.register(LabConnection)
class LabConnectionAdmin(ClinicAdminOnly, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    list_display = ["name", "clinic", "sending_facility", "sending_application", "assigning_authority", "active"]
    list_filter = ["active"]
    search_fields = ["name", "sending_facility"]
    inlines = [LabCodeMapInline]

    def get_queryset(self, request):
        connections = super().get_queryset(request).select_related("clinic")
        return connections if request.user.is_superuser else connections.filter(clinic_id=request.user.clinic_id)

    def get_fields(self, request, obj=None):
        fields = ["name", "sending_facility", "sending_application", "assigning_authority", "active"]
        return ["clinic", *fields] if request.user.is_superuser else fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "clinic":
            kwargs["queryset"] = clinic_selectors.clinic_list_for(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    has_add_permission = has_change_permission = has_delete_permission = ClinicAdminOnly.has_view_permission

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.clinic = request.user.clinic
        services.lab_connection_save(connection=obj, by=request.user, changed=form.changed_data)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        services.lab_code_maps_saved(connection=form.instance, by=request.user, formset=formset)

    def delete_model(self, request, obj):
        services.lab_connection_delete(connection=obj, by=request.user)


@admin.register(HL7Message)
class HL7MessageAdmin(ClinicAdminOnly, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    """The message log, read-only: every message received and how it was answered."""

    list_display = ["received_at", "sending_facility", "control_id", "message_type", "version", "ack_code",
                    "outcome", "created", "held", "skipped", "critical", "resent"]  # fmt: skip
    list_filter = ["ack_code", "outcome", "version"]
    search_fields = ["control_id", "sending_facility"]
    readonly_fields = [field.name for field in HL7Message._meta.fields]

    def get_queryset(self, request):
        messages = super().get_queryset(request).select_related("connection")
        return messages if request.user.is_superuser else messages.filter(clinic_id=request.user.clinic_id)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            audit_record(actor=request.user, action="hl7.message.list", detail={"count": changelist.result_count})
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if self.has_view_permission(request, obj):
            audit_record(actor=request.user, action="hl7.message.view", target=obj)
        return super().change_view(request, object_id, form_url, extra_context)
