"""Admin list filters the built-in ones lack: a date range and a free-text patient id."""

import datetime

from django.contrib import admin
from django.core.exceptions import ValidationError

from clinic.forms import parse_id


class DateRangeFilter(admin.FieldListFilter):
    """From / to dates (inclusive) on a datetime field, as two date inputs."""

    template = "admin/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.param_from = f"{field_path}__date__gte"
        self.param_to = f"{field_path}__date__lte"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.date_from = self._date(self.param_from)
        self.date_to = self._date(self.param_to)

    def _date(self, name) -> datetime.date | None:
        value = self.used_parameters.get(name) or ""
        value = value[-1] if isinstance(value, list) else value
        if not value:
            return None
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise admin.options.IncorrectLookupParameters(
                ValidationError(f"{value!r} is not a date (YYYY-MM-DD).")
            ) from None

    def expected_parameters(self):
        return [self.param_from, self.param_to]

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        if self.date_from:
            queryset = queryset.filter(**{self.param_from: self.date_from})
        if self.date_to:
            queryset = queryset.filter(**{self.param_to: self.date_to})
        return queryset

    def choices(self, changelist):
        yield {
            "param_from": self.param_from,
            "param_to": self.param_to,
            "value_from": self.date_from.isoformat() if self.date_from else "",
            "value_to": self.date_to.isoformat() if self.date_to else "",
            "other_params": {
                key: value[-1] if isinstance(value, list) else value
                for key, value in changelist.get_filters_params().items()
                if key not in (self.param_from, self.param_to)
            },
            "clear_url": changelist.get_query_string(remove=[self.param_from, self.param_to]),
        }


class PatientIdFilter(admin.SimpleListFilter):
    title = "patient id"
    parameter_name = "patient_id"
    template = "admin/input_filter.html"

    def lookups(self, request, model_admin):
        return [("", "")]  # a text input, not a list: the template renders it

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        patient_id = parse_id(value)
        if patient_id is None:
            raise admin.options.IncorrectLookupParameters(ValidationError("Patient id must be a number."))
        return queryset.filter(patient_id=patient_id)

    def choices(self, changelist):
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "other_params": {
                key: value[-1] if isinstance(value, list) else value
                for key, value in changelist.get_filters_params().items()
                if key != self.parameter_name
            },
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }
