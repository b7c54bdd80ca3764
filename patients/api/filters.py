"""Query filters of the list endpoints: explicit fields and orderings only; a value they refuse is a 400."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from patients.catalog import catalog
from patients.models import ClinicalStatus, Condition, Interpretation, Observation, VerificationStatus


class StableOrderingFilter(django_filters.OrderingFilter):
    """Orders by the chosen fields, then by id, so pages do not overlap when values tie."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        chosen = [self.get_ordering_value(param) for param in value or [] if param]
        return qs.order_by(*chosen, "-id") if chosen else qs


class ObservationFilter(django_filters.FilterSet):
    analyte = django_filters.CharFilter(method="filter_analyte", help_text="Analyte code, LOINC code or name.")
    effective_at = django_filters.DateFromToRangeFilter(
        help_text="Days, inclusive: effective_at_after=2026-01-01&effective_at_before=2026-03-31."
    )
    interpretation = django_filters.MultipleChoiceFilter(
        choices=Interpretation.choices, help_text="Flag; repeat the parameter for several."
    )
    ordering = StableOrderingFilter(fields=(("effective_at", "effective_at"), ("analyte__code", "analyte")))

    class Meta:
        model = Observation
        fields = ["analyte", "effective_at", "interpretation"]

    def filter_analyte(self, queryset: QuerySet[Observation], name: str, value: str) -> QuerySet[Observation]:
        spec = catalog().get(value)
        if spec is None:
            return queryset.none()
        return queryset.filter(analyte_id=catalog().ids[spec.code])


class ConditionFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(lookup_expr="istartswith", help_text="ICD-10 code prefix, e.g. E11.")
    clinical_status = django_filters.ChoiceFilter(choices=ClinicalStatus.choices)
    verification_status = django_filters.ChoiceFilter(choices=VerificationStatus.choices)
    ordering = StableOrderingFilter(
        fields=(("recorded_at", "recorded_at"), ("onset_date", "onset_date"), ("code", "code"))
    )

    class Meta:
        model = Condition
        fields = ["code", "clinical_status", "verification_status"]
