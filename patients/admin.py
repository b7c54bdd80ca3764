from django.contrib import admin
from django.core.exceptions import ValidationError

from clinic import roles
from clinic import selectors as clinic_selectors
from clinic.admin import NotFoundOutsideScopeMixin
from patients import selectors, services
from patients.models import Analyte, AnalyteLoinc, AnalyteUnit, ReferenceRange, TrustedSource


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LoincInline(ReadOnlyInline):
    model = AnalyteLoinc
    fields = ["code", "preferred"]


class UnitInline(ReadOnlyInline):
    model = AnalyteUnit
    fields = ["unit", "factor", "offset"]


class RangeInline(ReadOnlyInline):
    model = ReferenceRange
    fields = ["sex", "age_min", "age_max", "low", "high"]


@admin.register(Analyte)
class AnalyteAdmin(admin.ModelAdmin):
    """The catalog is read-only here: it changes through data migrations, reviewed like code."""

    list_display = ["name", "code", "panel", "kind", "unit", "critical_low", "critical_high"]
    list_filter = ["panel", "kind"]
    search_fields = ["code", "name", "loinc_codes__code"]
    inlines = [LoincInline, UnitInline, RangeInline]

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TrustedSource)
class TrustedSourceAdmin(NotFoundOutsideScopeMixin, admin.ModelAdmin):
    """A clinic admin trusts an import source (its diagnoses then count as training labels, and the model card
    says how many did), or stops trusting it. Added and deleted through `patients.services`, audited; never edited.
    """

    list_display = ["source", "clinic", "reason", "trusted_by", "created_at"]

    def get_queryset(self, request):
        return selectors.trusted_source_list_for(user=request.user).select_related("clinic", "trusted_by")

    def get_fields(self, request, obj=None):
        return ["clinic", "source", "reason"] if request.user.is_superuser else ["source", "reason"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        own_clinic = None if request.user.is_superuser else request.user.clinic

        class TrustForm(form):
            def clean(self):
                data = super().clean()
                clinic = data.get("clinic") or own_clinic
                if clinic is not None and selectors.trusted_source_exists(
                    clinic_id=clinic.pk, source=data.get("source")
                ):
                    raise ValidationError(f"{clinic} trusts this source already.")
                return data

        return TrustForm

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "clinic":
            kwargs["queryset"] = clinic_selectors.clinic_list_for(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return roles.can_manage_clinic(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.can_manage_clinic(request.user)

    has_add_permission = has_delete_permission = has_view_permission

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        clinic = obj.clinic if request.user.is_superuser else request.user.clinic
        saved = services.trusted_source_add(clinic=clinic, source=obj.source, by=request.user, reason=obj.reason)
        obj.pk, obj.clinic, obj.trusted_by = saved.pk, saved.clinic, saved.trusted_by

    def delete_model(self, request, obj):
        services.trusted_source_remove(trusted=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for trusted in queryset:
            services.trusted_source_remove(trusted=trusted, by=request.user)
