from django import forms

from patients.models import Patient


class ResolveForm(forms.Form):
    mrn = forms.CharField(
        label="MRN of the patient these results belong to", max_length=Patient._meta.get_field("mrn").max_length,
        help_text="Compared without regard to case. Register the patient first if they are new to the clinic.",
    )  # fmt: skip
