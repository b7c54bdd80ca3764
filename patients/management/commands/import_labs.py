"""`manage.py import_labs FILE [--clinic SLUG] [--skip-bad-rows] [--dry-run] [--report PATH] [--mrn MRN]`."""

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clinic.csvutils import csv_safe
from clinic.models import Clinic
from patients.imports.csv_labs import FORMATS, MAX_BYTES, REPORT_HEADER, report_rows
from patients.imports.services import ImportReport, labs_import

SHOWN_PROBLEMS = 20
PROGRESS_FROM = 10_000  # observations; smaller imports print no progress lines


def summary_lines(report: ImportReport) -> list[str]:
    if report.error:
        return [f"{report.filename}: refused, nothing imported. {report.error}"]
    verb = "would create" if report.dry_run else "created"
    count = report.to_create if report.dry_run else report.created
    lines = [
        f"{report.filename}: {report.format}, {report.rows} rows, {report.bad_rows} with problems, "
        f"{report.patients} patients",
        f"  observations: {count} {verb}, {report.duplicates} already stored",
    ]
    if report.unknown_columns:
        lines.append("  unknown columns: " + ", ".join(report.unknown_columns))
    if report.unknown_codes:
        lines.append("  unknown analyte codes: " + ", ".join(report.unknown_codes))
    if report.refused:
        lines.append(f"  refused, nothing imported: {len(report.problems)} problems (--skip-bad-rows imports the rest)")
    for problem in report.problems[:SHOWN_PROBLEMS]:
        lines.append(f"  row {problem.row}, {problem.column or '-'}: {problem.reason}")
    if len(report.problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... {len(report.problems) - SHOWN_PROBLEMS} more problems (--report PATH writes them all)")
    if report.critical:
        lines.append(f"  in a critical range: {len(report.critical)} new values, to act on promptly")
    for value in report.critical[:SHOWN_PROBLEMS]:
        lines.append(f"  row {value.row}, MRN {value.mrn}: {value.text}")
    if len(report.critical) > SHOWN_PROBLEMS:
        more = len(report.critical) - SHOWN_PROBLEMS
        lines.append(f"  ... {more} more (the patient list's Critical filter finds them)")
    return lines


class Command(BaseCommand):
    help = (
        "Import lab results or wearable daily values from a CSV file (long, wide or wearable layout) into a "
        "clinic. All rows or none unless --skip-bad-rows; exits non-zero when the file is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--clinic", help="Slug of the clinic; required when there is more than one.")
        parser.add_argument("--skip-bad-rows", action="store_true", help="Import the valid rows, leave out bad ones.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report; write nothing.")
        parser.add_argument("--report", type=Path, metavar="PATH", help="Write every problem to this CSV file.")
        parser.add_argument("--mrn", default="", help="The patient of a file without an MRN column.")
        parser.add_argument("--format", choices=FORMATS, default="auto")

    def handle(self, *args, file: Path, clinic: str | None, report: Path | None, **options):
        target = self._clinic(clinic)
        try:
            with file.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)  # one byte over is enough for the service to refuse the size
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        result = labs_import(
            by=None,
            clinic=target,
            data=data,
            filename=file.name,
            fmt=options["format"],
            mrn=options["mrn"],
            skip_bad_rows=options["skip_bad_rows"],
            dry_run=options["dry_run"],
            on_progress=self._progress,
        )
        if report is not None:
            with report.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(REPORT_HEADER)
                writer.writerows([csv_safe(cell) for cell in row] for row in report_rows(result.problems))
        self.stdout.write("\n".join(summary_lines(result)))
        if result.refused:
            raise CommandError(f"{file.name} refused: nothing imported.")

    def _clinic(self, slug: str | None) -> Clinic:
        if slug:
            clinic = Clinic.objects.filter(slug=slug).first()
            if clinic is None:
                raise CommandError(f"No clinic with slug {slug!r}.")
            return clinic
        clinics = list(Clinic.objects.all()[:2])
        if len(clinics) != 1:
            slugs = ", ".join(Clinic.objects.values_list("slug", flat=True)) or "none exist"
            raise CommandError(f"Name the clinic with --clinic SLUG ({slugs}).")
        return clinics[0]

    def _progress(self, done: int, total: int) -> None:
        if total >= PROGRESS_FROM:
            self.stdout.write(f"  written {done:,} of {total:,} observations")
