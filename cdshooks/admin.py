"""EHR connections in the Django admin: a clinic admin registers their clinic's EHR; every change is audited."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from cdshooks.models import EhrConnection
from clinic import roles
from clinic.admin import NotFoundOutsideScopeMixin
from clinic.audit import audit_record


@admin.register(EhrConnection)
class EhrConnectionAdmin(NotFoundOutsideScopeMixin, admin.ModelAdmin):
    list_display = ["name", "iss", "active", "may_store_prefetch"]
    list_filter = ["active"]
    search_fields = ["name", "iss"]
    fields = ["clinic", "name", "iss", "jwks_url", "jwks", "audience", "mrn_system", "may_store_prefetch", "active"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # an EHR's URLs are https; Django 6's default too
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("clinic")
        return queryset if request.user.is_superuser else queryset.filter(clinic_id=request.user.clinic_id)

    def get_fields(self, request, obj=None):
        """A clinic admin registers their own clinic's EHR: the clinic is shown once saved, never chosen."""
        if request.user.is_superuser or obj is not None:
            return self.fields
        return [field for field in self.fields if field != "clinic"]

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["clinic"]

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    has_change_permission = has_view_permission
    has_add_permission = has_module_permission

    def has_delete_permission(self, request, obj=None):
        return False  # feedback and audit rows name it: deactivate instead

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.clinic_id = request.user.clinic_id  # a clinic admin registers their own clinic's EHR only
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user, action="ehr_connection.update" if change else "ehr_connection.create", target=obj,
            detail={"changed": sorted(form.changed_data), "iss": obj.iss, "active": obj.active},
        )  # fmt: skip
