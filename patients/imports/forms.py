"""Forms of the import pages: they check the upload's size and read the choices; the service does the rest."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from patients.imports.csv_labs import MAX_BYTES, size_message
from patients.imports.jobs import import_job_kind

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


JOB_KINDS = [("auto", "Detect from the files"), ("fhir", "FHIR Bundles or Bulk Data NDJSON"), ("csv", "Lab CSV")]


class _ManyFilesInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class ManyFilesField(forms.FileField):
    """One or more files from one input; cleaned to a list."""

    widget = _ManyFilesInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(ManyFilesField, self).clean(file, initial) for file in files]


class JobUploadForm(forms.Form):
    files = ManyFilesField(
        label="Files",
        help_text="FHIR Bundles (.json), Bulk Data NDJSON (Patient.ndjson, Observation.ndjson, ...: all files of "
        "one export together) or lab CSV files. Select several at once; a folder of per-patient bundles too.",
    )
    kind = forms.ChoiceField(choices=JOB_KINDS, initial="auto")
    skip_bad = forms.BooleanField(
        label="FHIR: skip clinically wrong resources",
        required=False,
        help_text="Import the rest of a file with an implausible value or a unit the catalog does not accept, "
        "listing those resources. Otherwise such a file is refused whole.",
    )
    strict = forms.BooleanField(
        label="FHIR: refuse a file with an unreadable resource",
        required=False,
        help_text="Otherwise a resource that cannot be read is skipped and listed, and the rest imported.",
    )
    skip_bad_rows = forms.BooleanField(label="CSV: skip bad rows", required=False)
    format = forms.ChoiceField(label="CSV layout", choices=FORMAT_CHOICES, initial="auto")
    mrn = forms.CharField(label="CSV: patient MRN", max_length=64, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Import in the background"))

    def clean(self):
        data = super().clean()
        files = data.get("files") or []
        if data.get("kind") == "auto" and files:
            data["kind"] = import_job_kind([file.name for file in files])  # raises ValidationError, shown on the form
        return data

    def options(self) -> dict:
        data = self.cleaned_data
        if data["kind"] == "fhir":
            return {"skip_bad": data["skip_bad"], "strict": data["strict"]}
        return {"format": data["format"], "mrn": data["mrn"], "skip_bad_rows": data["skip_bad_rows"]}
