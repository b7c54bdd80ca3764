"""`manage.py import_fhir FILE... --clinic SLUG [--skip-bad] [--strict] [--background [--wait]]`.

A file with clinically wrong content is refused whole unless --skip-bad; a resource that cannot be read is skipped
and listed unless --strict (`patients.fhir.services`).

In the foreground the files are imported here as one export (`patients.fhir.bulk`: Bulk Data NDJSON files
resolve their subjects across files, NDJSON is read in chunks), with a line per file as it finishes and its
summary. `--background` queues an import job for the workers instead and prints its id (`import_job ID` follows it).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic
from patients.fhir.bulk import FileResult, fhir_files_import
from patients.imports.jobs import COMMAND, import_job_create
from patients.models import ImportJobKind

PIECE = 1024 * 1024

SHOWN_CRITICAL = 20


def summary_lines(summary: dict[str, Any]) -> list[str]:
    patients, observations, conditions = summary["patients"], summary["observations"], summary["conditions"]
    lines = [
        f"{summary['file']}: {summary['format']}, {summary['resources']} resources",
        # A merged summary lists the first MRNs only and counts them all.
        f"  patients: {patients.get('created_count', len(patients['created']))} created, "
        f"{patients.get('matched_count', len(patients['matched']))} matched",
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
        "Import FHIR R4 Bundles or NDJSON files (a Bulk Data export's files together) of Patient, Observation and "
        "Condition resources into a clinic. A file with clinically wrong content is refused whole (unless "
        "--skip-bad); unreadable resources are skipped and listed (unless --strict). Exits non-zero if any file was "
        "refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--clinic", required=True, help="Slug of the clinic to import into.")
        parser.add_argument("--skip-bad", action="store_true", help="Skip resources with clinically wrong content too.")
        parser.add_argument("--strict", action="store_true", help="Refuse a file if any resource cannot be read.")
        parser.add_argument("--background", action="store_true", help="Queue an import job for the workers and "
                            "print its id.")  # fmt: skip
        parser.add_argument("--wait", action="store_true", help="With --background: follow the job until it ends.")

    def handle(self, *args, files: list[Path], clinic: str, background: bool, wait: bool, **options):
        flags = {"skip_bad": options["skip_bad"], "strict": options["strict"]}
        target = Clinic.objects.filter(slug=clinic).first()
        if target is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise CommandError(f"No such file: {', '.join(missing)}.")
        if background:
            return self._queue(target, files, flags=flags, wait=wait)
        summary, results = fhir_files_import(
            clinic=target, files=[(path.name, path) for path in files], username=COMMAND, **flags,
            on_chunk=self._chunk, on_file=self._file,
        )  # fmt: skip
        refused = [result for result in results if result.summary is None]
        if len(files) > 1 and summary:
            stored = len(files) - len(refused)
            self.stdout.write("\n".join(summary_lines({**summary, "file": f"All {stored} imported files"})))
        if refused:
            raise CommandError(f"{len(refused)} of {len(files)} file(s) refused.")

    def _chunk(self, name: str, phase: str, done: int, total: int) -> None:
        if phase == "imported" and done < total:
            self.stdout.write(f"  {name}: {done:,} of {total:,} resources")

    def _file(self, position: int, total: int, result: FileResult) -> None:
        if result.summary is None:
            self.stderr.write(f"[{position}/{total}] {result.name}: refused, nothing imported.")
            for message in result.error:
                self.stderr.write(f"  {message}")
            return
        observations = result.summary["observations"]
        counts = f"{observations['created']:,} results created, {observations['duplicates']:,} already stored"
        self.stdout.write(f"[{position}/{total}] {result.name}: {result.resources:,} resources, {counts}")
        if total == 1:  # several files: the summary of them all comes at the end
            self.stdout.write("\n".join(summary_lines(result.summary)))

    def _queue(self, clinic: Clinic, files: list[Path], *, flags: dict[str, bool], wait: bool) -> None:
        job = import_job_create(
            by=None, clinic=clinic, kind=ImportJobKind.FHIR, files=[(path.name, _pieces(path)) for path in files],
            options=flags, username=COMMAND,
        )  # fmt: skip
        self.stdout.write(f"Queued import job {job.pk}, {len(files)} file(s); follow it: manage.py import_job {job.pk}")
        if wait:
            from django.core.management import call_command

            call_command("import_job", str(job.pk), stdout=self.stdout, stderr=self.stderr)


def _pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(PIECE):
            yield piece
