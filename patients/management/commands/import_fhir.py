"""`manage.py import_fhir FILE... --clinic SLUG [--skip-bad] [--strict]`: a summary per file.

A file with clinically wrong content is refused whole unless --skip-bad; a resource that cannot be read is skipped
and listed unless --strict (`patients.fhir.services`)."""

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic
from patients.fhir.reader import MAX_BYTES, guess_format
from patients.fhir.services import fhir_import

SHOWN_CRITICAL = 20


def summary_lines(summary: dict[str, Any]) -> list[str]:
    patients, observations, conditions = summary["patients"], summary["observations"], summary["conditions"]
    lines = [
        f"{summary['file']}: {summary['format']}, {summary['resources']} resources",
        f"  patients: {len(patients['created'])} created, {len(patients['matched'])} matched",
        f"  observations: {observations['created']} created, {observations['duplicates']} already stored",
        f"  conditions: {conditions['created']} created, {conditions['restatements']} restated by later encounters, "
        f"{conditions['duplicates']} already stored, {conditions['mapped_from_snomed']} mapped from SNOMED CT",
    ]
    if laboratory := summary["laboratory"]["numeric_results"]:
        recognised = summary["laboratory"]["recognised"]
        lines.append(
            f"  laboratory: {recognised} of {laboratory} numeric results recognised ({recognised / laboratory:.1%})"
        )
    if conditions["downgraded_to_provisional"]:
        lines.append(f"  {conditions['downgraded_to_provisional']} conditions the file calls confirmed wait for a "
                     "doctor to confirm them (the portal's imported diagnoses page)")  # fmt: skip
    if observations["critical_count"]:
        lines.append(f"  in a critical range: {observations['critical_count']} new values, to act on promptly")
        lines.extend(f"    MRN {value['mrn']}: {value['text']}" for value in observations["critical"][:SHOWN_CRITICAL])
        if (more := observations["critical_count"] - SHOWN_CRITICAL) > 0:
            lines.append(f"    ... {more} more (the patient list's Critical filter finds them)")
    for title, key in (("skipped resource types", "skipped_resource_types"), ("skipped", "skipped")):
        if summary[key]:
            lines.append(f"  {title}: " + ", ".join(f"{name} {count}" for name, count in summary[key].items()))
    for title, key in (("unknown codes", "unknown_codes"), ("unmapped conditions", "unmapped_conditions")):
        if rows := summary[key]:
            lines.append(f"  {title}:")
            lines.extend(f"    {row['code']} {row['display']} ({row['count']})" for row in rows)
    for title, key in (("warnings", "warnings"), (f"skipped {summary['unreadable_skipped']} unreadable", "unreadable")):
        if summary[key]:
            lines.append(f"  {title}:")
            lines.extend(f"    {line}" for line in summary[key])
    if summary["problems_skipped"]:
        lines.append(f"  skipped {summary['problems_skipped']} resources that cannot be stored:")
        lines.extend(f"    {problem}" for problem in summary["problems"])
    return lines


class Command(BaseCommand):
    help = (
        "Import FHIR R4 Bundles (transaction or collection) or NDJSON files of Patient, Observation and "
        "Condition resources into a clinic. A file with clinically wrong content is refused whole (unless --skip-bad); "
        "unreadable resources are skipped and listed (unless --strict). Exits non-zero if any file was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--clinic", required=True, help="Slug of the clinic to import into.")
        parser.add_argument("--skip-bad", action="store_true", help="Skip resources with clinically wrong content too.")
        parser.add_argument("--strict", action="store_true", help="Refuse a file if any resource cannot be read.")

    def handle(self, *args, files: list[Path], clinic: str, skip_bad: bool, strict: bool, **options):
        target = Clinic.objects.filter(slug=clinic).first()
        if target is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        refused = 0
        for path in files:
            try:
                with path.open("rb") as handle:
                    data = handle.read(MAX_BYTES + 1)
                summary = fhir_import(
                    by=None,
                    clinic=target,
                    data=data,
                    name=path.name,
                    fmt=guess_format(path.name),
                    skip_bad=skip_bad,
                    strict=strict,
                    username="manage.py import_fhir",
                )
            except (OSError, ValidationError) as exc:
                refused += 1
                messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                self.stderr.write(f"{path}: refused, nothing imported.")
                self.stderr.writelines(f"  {message}" for message in messages)
                continue
            self.stdout.write("\n".join(summary_lines(summary)))
        if refused:
            raise CommandError(f"{refused} of {len(files)} file(s) refused.")
