from django.contrib import admin

from clinic import roles
from patients.models import Analyte, AnalyteLoinc, AnalyteUnit, ReferenceRange


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
