"""Forms of the staff portal. They parse and validate input; the services in `patients.services` write."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Fieldset, Layout, Row, Submit
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.functional import cached_property

from patients.catalog_data import AnalyteSpec, unit_label
from patients.clinical import accepted_units
from patients.models import (
    AMEND_REASON_MAX,
    CONTACT_MESSAGE_MAX,
    CONTACT_TIMES_MAX,
    Allergy,
    Condition,
    ContactKind,
    Medication,
    Patient,
    Sex,
)
from patients.selectors import AGE_BANDS, PATIENT_ORDERINGS, LikelyDuplicate
from patients.services import ObservationInput

_DATE = {"type": "date"}


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs=_DATE, format="%Y-%m-%d")


def _helper(submit: str) -> FormHelper:
    helper = FormHelper()
    helper.add_input(Submit("submit", submit))
    return helper


def attach_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names, the rest above the form."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


class PatientFilterForm(forms.Form):
    q = forms.CharField(label="Name or MRN", required=False)
    sex = forms.ChoiceField(choices=[("", "Any sex"), *Sex.choices], required=False)
    age_band = forms.ChoiceField(label="Age", choices=[("", "Any age"), *((b, b) for b in AGE_BANDS)], required=False)
    condition = forms.CharField(label="Condition (ICD-10)", required=False, max_length=8)
    abnormal = forms.BooleanField(label="Abnormal latest results", required=False)
    critical = forms.BooleanField(label="Critical latest results", required=False)
    ordering = forms.ChoiceField(
        choices=[(key, key) for key in PATIENT_ORDERINGS], required=False, widget=forms.HiddenInput
    )

    # Written out in templates/patients/_filters.html (the list renders it on every request).

    @property
    def choice_fields(self):
        return [self["sex"], self["age_band"]]

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `selectors.patient_search`; a field with invalid input counts as no filter."""
        data: dict[str, Any] = {}
        if self.is_bound:
            self.is_valid()  # cleaned_data then holds the fields that are valid
            data = self.cleaned_data
        return {
            "query": data.get("q", ""),
            "sex": data.get("sex", ""),
            "age_band": data.get("age_band", ""),
            "abnormal": data.get("abnormal", False),
            "critical": data.get("critical", False),
            "condition": data.get("condition", ""),
            "ordering": data.get("ordering") or "name",
        }


class PatientForm(forms.ModelForm):
    """Registration and editing, lifestyle and family history included. Saved by the services, not by save()."""

    class Meta:
        model = Patient
        fields = [
            "mrn", "given_name", "family_name", "birth_date", "sex", "email", "phone", "address",
            "smoking", "alcohol", "physical_activity", "diet",
            "family_history_diabetes", "family_history_cardiovascular", "family_history_anemia",
        ]  # fmt: skip
        widgets = {
            "birth_date": _date_input(),
            # Not type="email": browsers refuse a local part beyond ASCII (tomás@...), which the model accepts.
            "email": forms.TextInput(attrs={"inputmode": "email", "autocomplete": "email"}),
            "address": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, submit: str = "Save", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(submit)
        self.helper.layout = Layout(
            Fieldset(
                "Demographics",
                Row(Column("mrn"), Column("given_name"), Column("family_name")),
                Row(Column("birth_date"), Column("sex")),
                Row(Column("email"), Column("phone")),
                "address",
            ),
            Fieldset(
                "Lifestyle",
                Row(Column("smoking"), Column("alcohol"), Column("physical_activity"), Column("diet")),
            ),
            Fieldset(
                "Family history (first-degree relatives)",
                Row(
                    Column("family_history_diabetes"),
                    Column("family_history_cardiovascular"),
                    Column("family_history_anemia"),
                ),
            ),
        )


class _WarningSubmit(Submit):
    field_classes = "btn btn-warning"


class PatientRegistrationForm(PatientForm):
    """Registration: when the clinic may already have this person, the form comes back listing them, with a
    second button that registers the patient all the same."""

    # Sent only by the "Register anyway" button, which the form shows once it has listed likely duplicates.
    register_anyway = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, submit="Register patient", **kwargs)
        self.likely_duplicates: list[LikelyDuplicate] = []

    def show_likely_duplicates(self, duplicates: list[LikelyDuplicate]) -> None:
        self.likely_duplicates = duplicates
        self.helper.add_input(_WarningSubmit("register_anyway", "Register anyway", css_class="ms-2"))


class ConditionForm(forms.ModelForm):
    class Meta:
        model = Condition
        fields = ["code", "display", "onset_date", "clinical_status", "verification_status", "note"]
        widgets = {"onset_date": _date_input(), "note": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"verification_status": "Only a doctor can confirm a diagnosis."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("Add condition")

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip().upper()


class MedicationForm(forms.ModelForm):
    class Meta:
        model = Medication
        fields = ["name", "dose", "started_on"]
        widgets = {"started_on": _date_input()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("Add medication")


class AllergyForm(forms.ModelForm):
    class Meta:
        model = Allergy
        fields = ["substance", "reaction", "severity"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("Add allergy")


class ObservationAmendForm(forms.Form):
    """Correct a result (a new value, in any accepted unit) or withdraw it as entered in error; a reason always."""

    CORRECT, WITHDRAW = "correct", "withdraw"
    action = forms.ChoiceField(
        label="What is wrong",
        choices=[
            (CORRECT, "The value is wrong: replace it"),
            (WITHDRAW, "The result should not be here: entered in error"),
        ],
        widget=forms.RadioSelect,
        initial=CORRECT,
    )
    value = forms.FloatField(label="Correct value", required=False, widget=forms.NumberInput(attrs={"step": "any"}))
    reason = forms.CharField(
        max_length=AMEND_REASON_MAX, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the result and shown beside it, e.g. “typed 69 for 6.9” or “belongs to another patient”.",
    )  # fmt: skip

    def __init__(self, *args, spec: AnalyteSpec, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"] = _unit_field(spec)
        self.helper = _helper("Save")
        self.helper.layout = Layout(
            "action", Row(Column("value", css_class="col-8"), Column("unit", css_class="col-4")), "reason"
        )

    def clean(self):
        data = super().clean()
        if data.get("action") == self.CORRECT and data.get("value") is None:
            self.add_error("value", "Enter the correct value, or choose “entered in error”.")
        return data

    def amendment(self) -> dict[str, Any]:
        """The service's keywords: a value and unit for a correction, none for a withdrawal."""
        data = self.cleaned_data
        if data["action"] == self.WITHDRAW:
            return {"reason": data["reason"]}
        return {"reason": data["reason"], "value": data["value"], "unit": data["unit"]}


def _unit_field(spec: AnalyteSpec) -> forms.ChoiceField:
    choices = [(unit, unit_label(spec.code, unit)) for unit in accepted_units(spec)]  # canonical first
    return forms.ChoiceField(label="Unit", choices=choices, initial=spec.unit, required=False)


class PanelForm(forms.Form):
    """One optional value and a unit chooser per analyte of a panel, and the time they were taken."""

    effective_at = forms.DateTimeField(
        label="Taken at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, specs: list[AnalyteSpec], **kwargs):
        super().__init__(*args, **kwargs)
        self.specs = specs
        self.fields["effective_at"].initial = timezone.localtime().replace(second=0, microsecond=0)
        for spec in specs:
            self.fields[spec.code] = forms.FloatField(
                label=spec.name, required=False, widget=forms.NumberInput(attrs={"step": "any"})
            )
            self.fields[f"{spec.code}__unit"] = _unit_field(spec)

    @cached_property
    def helper(self) -> FormHelper:
        """The layout, built when the form is drawn: a panel posted and saved is never drawn, and building the
        layout's rows was a quarter of result entry's CPU time."""
        rows = [
            Row(Column(spec.code, css_class="col-8"), Column(f"{spec.code}__unit", css_class="col-4"))
            for spec in self.specs
        ]
        helper = _helper("Record results")
        helper.layout = Layout(Row(Column("effective_at", css_class="col-md-6")), *rows)
        return helper

    def entries(self) -> list[ObservationInput]:
        """The filled-in values, keyed by analyte code so the service's errors map back to the fields."""
        return [
            ObservationInput(analyte=spec.code, value=value, unit=self.cleaned_data[f"{spec.code}__unit"] or spec.unit)
            for spec in self.specs
            if (value := self.cleaned_data.get(spec.code)) is not None
        ]


class ContactRequestForm(forms.Form):
    """A patient's question or appointment request (`patients.contact` checks it again and writes it)."""

    kind = forms.ChoiceField(
        label="What do you need?", choices=ContactKind.choices, widget=forms.RadioSelect, initial=ContactKind.QUESTION
    )
    message = forms.CharField(
        label="Your message", max_length=CONTACT_MESSAGE_MAX, widget=forms.Textarea(attrs={"rows": 5}),
        help_text=f"Up to {CONTACT_MESSAGE_MAX} characters. The clinic's reply appears under “Contact the clinic”.",
    )  # fmt: skip
    preferred_times = forms.CharField(
        label="Times that suit you (for an appointment or a call back)", max_length=CONTACT_TIMES_MAX, required=False,
        help_text="For example: weekday mornings, not Fridays.",
    )  # fmt: skip
    about = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("Send to the clinic")


class ContactReplyForm(forms.Form):
    reply = forms.CharField(
        label="Reply to the patient", max_length=CONTACT_MESSAGE_MAX, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The patient reads it on their requests page. Needed to mark the request done.",
    )  # fmt: skip
