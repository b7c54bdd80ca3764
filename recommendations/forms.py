"""The sign form of a standing protocol: it parses input; `protocols.protocol_sign` checks and writes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from recommendations.models import ProtocolSex, Severity
from recommendations.protocols import MAX_AGE, advice_severities, releasable_advice

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ProtocolForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="What the protocol is for, as the clinic's doctors will read it.")
    advice = forms.MultipleChoiceField(
        label="Advice released without per-patient review", widget=forms.CheckboxSelectMultiple,
        help_text="Only items never generated above low severity are offered.",
    )  # fmt: skip
    sex = forms.ChoiceField(label="Patients", choices=ProtocolSex.choices, required=False)
    min_age = forms.IntegerField(label="Youngest age", required=False, min_value=0, max_value=MAX_AGE)
    max_age = forms.IntegerField(label="Oldest age", required=False, min_value=0, max_value=MAX_AGE)
    starts_on = forms.DateField(label="Starts on", widget=_DATE)
    ends_on = forms.DateField(label="Ends on", widget=_DATE, help_text="At most a year after it starts.")
    release_waiting = forms.BooleanField(
        label="Also release what it covers among the advice waiting in the queue now", required=False, initial=True
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        severities = advice_severities()
        self.fields["advice"].choices = [
            (a.code, f"{a.title} ({Severity(max(severities[a.code])).label.lower()})") for a in releasable_advice()
        ]
        self.fields["starts_on"].initial = timezone.localdate()

    def sign_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `protocols.protocol_sign` (call after is_valid())."""
        data = dict(self.cleaned_data)
        data["advice_codes"] = data.pop("advice")
        return data

    def show(self, error: ValidationError) -> None:
        """Show the service's refusal next to the fields it names, the rest above the form."""
        for field, messages in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
            self.add_error(field if field in self.fields else None, messages)
