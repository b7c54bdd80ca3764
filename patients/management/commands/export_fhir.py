"""`manage.py export_fhir --clinic SLUG --mrn MRN [-o FILE]`: one patient as a FHIR R4 Bundle."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from patients.fhir.services import fhir_export
from patients.models import Patient


class Command(BaseCommand):
    help = "Export one patient (Patient, Observations, Conditions) as a FHIR R4 collection Bundle."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", required=True, help="Slug of the patient's clinic.")
        parser.add_argument("--mrn", required=True, help="The patient's medical record number.")
        parser.add_argument("-o", "--output", type=Path, help="File to write (default: standard output).")

    def handle(self, *args, clinic: str, mrn: str, output: Path | None, **options):
        patient = Patient.objects.select_related("clinic").filter(clinic__slug=clinic, mrn=mrn).first()
        if patient is None:
            raise CommandError(f"No patient with MRN {mrn!r} in clinic {clinic!r}.")
        bundle = fhir_export(by=None, patient=patient, username="manage.py export_fhir")
        text = json.dumps(bundle, indent=2, ensure_ascii=False)
        if output is None:
            self.stdout.write(text)
            return
        output.write_text(text + "\n", encoding="utf-8")
        self.stderr.write(f"Wrote {len(bundle['entry'])} resources to {output}.")
