"""Forms of the import pages: they check the upload's size and read the choices; the service does the rest."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from patients.imports.csv_labs import MAX_BYTES, size_message

FORMAT_CHOICES = [
    ("auto", "Detect from the header"),
    ("long", "Long: one value per row (mrn, analyte, value, unit, time)"),
    ("wide", "Wide: one row per visit, one column per analyte (also wearable exports)"),
]


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8 text, at most 10 MB and 200,000 rows.")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto")
    mrn = forms.CharField(
        label="Patient MRN",
        max_length=64,
        required=False,
        help_text="Only for a file about one patient without an MRN column, such as a wearable export.",
    )
    skip_bad_rows = forms.BooleanField(
        label="Skip bad rows",
        required=False,
        help_text="Import the valid rows and leave out rows with problems. Otherwise one problem stops the import.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Check the file"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(size_message(upload.size))
        return upload


class ConfirmForm(forms.Form):
    skip_bad_rows = forms.BooleanField(label="Skip bad rows and import the rest", required=False)
