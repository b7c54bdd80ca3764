"""Import jobs: a bulk import run by a worker, with progress the portal, the API and the command show.

The web request stores the files in the database (`uploads.job_files_save`, in pieces, in the transaction that
creates the row: any host's worker reads them), and enqueues `patients.tasks.import_job_run` once that commits;
it answers at once. The worker claims the row with a
conditional update (queued, or running with a heartbeat older than `STALE_AFTER`: its worker died), imports
file by file through the services that check, write and audit each file (`patients.fhir.bulk` for FHIR,
`labs_import` for CSV), saves progress after every file and chunk, and finishes the row with the merged summary.
Running a job again is safe: each file or chunk is one transaction, and importing it again writes nothing twice.

Without a broker (`make run` on SQLite, Celery eager), a task would run inside the request that queued it and
the upload would wait for the whole import; the job runs in a thread of the web process instead, so the dev
server answers at once as production does. Tests set `IMPORT_JOBS_IN_THREAD = False` to run it on commit.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from clinic.audit import audit_record
from clinic.models import AuditOutcome, Clinic, User
from clinic.outbox import outbox_send
from patients.fhir.bulk import FileResult, fhir_files_import
from patients.imports import uploads
from patients.imports.csv_labs import FORMATS, MAX_BYTES, UnreadableFile
from patients.imports.csv_parts import csv_parts, rows_shift
from patients.imports.services import (
    MAX_REPORTED_CRITICAL,
    MAX_REPORTED_PROBLEMS,
    ImportReport,
    _ensure_can_import,
    labs_import,
)
from patients.models import ImportJob, ImportJobKind, ImportJobStatus

logger = logging.getLogger(__name__)

STALE_AFTER = datetime.timedelta(minutes=10)  # progress is saved far more often than this while a job runs
MAX_RESENDS = 3  # a job whose worker is lost this often (say, killed for memory each time) is failed, not resent
MAX_FILES = 5000  # a Synthea population is one bundle per patient
COMMAND = "manage.py import_fhir"
CSV_SUFFIXES = (".csv", ".txt")


def import_job_kind(names: list[str]) -> str:
    """The kind of a job from its files' names: CSV files (.csv, .txt) or FHIR files; both together are refused."""
    csv = [name.lower().endswith(CSV_SUFFIXES) for name in names]
    if any(csv) and not all(csv):
        raise ValidationError("CSV and FHIR files together: import them as two jobs.")
    return ImportJobKind.CSV if csv and all(csv) else ImportJobKind.FHIR


def _options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    if kind == ImportJobKind.FHIR:
        return {"skip_bad": bool(options.get("skip_bad", False)), "strict": bool(options.get("strict", False))}
    fmt = options.get("format") or "auto"
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown CSV format {fmt!r}; one of {', '.join(FORMATS)}.")
    return {"format": fmt, "mrn": str(options.get("mrn") or "").strip()[:64],
            "skip_bad_rows": bool(options.get("skip_bad_rows", False))}  # fmt: skip


def import_job_create(
    *,
    by: User | None,
    clinic: Clinic,
    kind: str,
    files: list[tuple[str, Iterable[bytes]]],
    options: dict[str, Any] | None = None,
    username: str = "",
) -> ImportJob:
    """Store the files (name, pieces), create the job and enqueue it once this commits. Nothing is imported yet.

    Raises ValidationError for no file, too many, an unknown kind or option, and PermissionDenied for a role that
    cannot import or another clinic; nothing is stored then.
    """
    _ensure_can_import(by, clinic)
    if kind not in ImportJobKind.values:
        raise ValidationError(f"Unknown import kind {kind!r}; one of {', '.join(ImportJobKind.values)}.")
    if not files:
        raise ValidationError("Attach at least one file.")
    if len(files) > MAX_FILES:
        raise ValidationError(f"{len(files)} files; at most {MAX_FILES:,} in one import. Split it.")
    clean = _options(kind, options or {})
    with transaction.atomic():  # the files, the row and its audit row: all or nothing
        stored = uploads.job_files_save(files)
        job = ImportJob.objects.create(
            clinic=clinic, created_by=by, created_by_name=username, kind=kind, files=stored, options=clean,
            progress={"files_done": 0, "files_total": len(stored), "resources_done": 0, "step": "Queued"},
        )  # fmt: skip
        audit_record(
            actor=by, username=username, action="import_job.create", target=job,
            detail={"kind": kind, "options": clean, "files": [(f["name"], f["size"]) for f in stored]},
        )  # fmt: skip
        _dispatch(job.pk)
    return job


def _dispatch(job_id: int) -> None:
    """In the transaction that queues the job: run it once that commits. Through the outbox, so a broker that is
    down delays the job instead of failing the request that queued it (the claim runs a job once)."""
    from clinic.celery import app

    if app.conf.task_always_eager and getattr(settings, "IMPORT_JOBS_IN_THREAD", True):
        thread = threading.Thread(target=_run_in_thread, args=(job_id,), name=f"import-job-{job_id}", daemon=True)
        transaction.on_commit(thread.start)
    else:
        outbox_send(task="patients.tasks.import_job_run", args=[job_id])


def _run_in_thread(job_id: int) -> None:
    try:
        import_job_execute(job_id=job_id)
    except Exception:
        logger.exception("Import job %s failed in its thread", job_id)
    finally:
        connection.close()  # the thread's own connection


# --- running a job ---------------------------------------------------------------------------------------------


def _claim(job_id: int) -> ImportJob | None:
    """Take the job: queued, or left running by a worker that stopped saving progress. None: not ours to run."""
    now = timezone.now()
    claimable = Q(status=ImportJobStatus.QUEUED) | Q(status=ImportJobStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
    taken = ImportJob.objects.filter(claimable, pk=job_id).update(
        status=ImportJobStatus.RUNNING, started_at=Coalesce("started_at", now), heartbeat_at=now
    )
    return ImportJob.objects.select_related("clinic", "created_by").get(pk=job_id) if taken else None


def import_job_busy(*, job_id: int) -> bool:
    """Running under a live worker: a message delivered again while it runs must wait, not run it twice."""
    return ImportJob.objects.filter(
        pk=job_id, status=ImportJobStatus.RUNNING, heartbeat_at__gte=timezone.now() - STALE_AFTER
    ).exists()


def import_jobs_resume_stalled() -> list[int]:
    """The periodic sweep: jobs queued for STALE_AFTER (their message lost, or a long queue: a second message is
    harmless, the claim runs a job once) are sent again; running jobs without a heartbeat for STALE_AFTER (their
    worker lost) are queued again, and after MAX_RESENDS failed with the reason. Returns the ids sent again."""
    now = timezone.now()
    cutoff = now - STALE_AFTER
    waiting = Q(status=ImportJobStatus.QUEUED) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    abandoned = Q(status=ImportJobStatus.RUNNING, heartbeat_at__lt=cutoff)
    sent = []
    for job in ImportJob.objects.filter(waiting | abandoned).only("pk", "status", "resends"):
        if job.status == ImportJobStatus.RUNNING and job.resends >= MAX_RESENDS:
            _abandoned_fail(job.pk, cutoff)
            continue
        changes = {"heartbeat_at": now}
        if job.status == ImportJobStatus.RUNNING:
            changes |= {"status": ImportJobStatus.QUEUED, "resends": F("resends") + 1}
        with transaction.atomic():
            if ImportJob.objects.filter(waiting | abandoned, pk=job.pk).update(**changes):  # not taken meanwhile
                _dispatch(job.pk)
                sent.append(job.pk)
    return sent


def _abandoned_fail(job_id: int, cutoff: datetime.datetime) -> None:
    error = (f"The import stopped {MAX_RESENDS + 1} times without finishing (its worker was lost each time). What "
             "it imported is kept; import the files again to add the rest.")  # fmt: skip
    with transaction.atomic():
        failed = ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=ImportJobStatus.FAILED, error=error, finished_at=timezone.now()
        )
        if not failed:
            return
        job = ImportJob.objects.select_related("created_by").get(pk=job_id)
        audit_record(actor=job.created_by, username=job.created_by_name, action="import_job.finish", target=job,
                     outcome=AuditOutcome.FAILURE, detail={"files": len(job.files), "error": error})  # fmt: skip
    uploads.job_files_delete(job.files)


class _Progress:
    """Saves the job's progress (and heartbeat) as files and chunks finish; outside any import's transaction."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.files_done, self.resources_done, self.rows = 0, 0, []

    def save(self, step: str, **current: int) -> None:
        progress = {"files_done": self.files_done, "files_total": len(self.job.files),
                    "resources_done": self.resources_done, "step": step[:200], **current}  # fmt: skip
        ImportJob.objects.filter(pk=self.job.pk).update(progress=progress, heartbeat_at=timezone.now())

    def chunk(self, name: str, phase: str, done: int, total: int) -> None:
        """Also while a large file is checked before it is written: the heartbeat must not go stale then."""
        if phase == "checked":
            self.save(f"{name}: {done:,} resources checked")
        else:
            self.save(f"{name}: {done:,} of {total:,} resources imported", current_done=done, current_total=total)

    def file(self, position: int, total: int, result: FileResult) -> None:
        self.files_done, self.resources_done = position, self.resources_done + result.resources
        self.rows.append(result.row())
        self.save(f"{position} of {total} files imported" if position < total else "Finishing")


Paths = list[tuple[str, Path]]


def _run_fhir(job: ImportJob, progress: _Progress, paths: Paths) -> dict[str, Any]:
    summary, _ = fhir_files_import(
        clinic=job.clinic, files=paths, by=job.created_by, username=job.created_by_name,
        skip_bad=job.options.get("skip_bad", False), strict=job.options.get("strict", False),
        on_chunk=progress.chunk, on_file=progress.file,
    )  # fmt: skip
    return summary


def _run_csv(job: ImportJob, progress: _Progress, paths: Paths) -> dict[str, Any]:
    merged = None
    for position, (name, path) in enumerate(paths, start=1):
        progress.save(f"{name}: reading")
        large = path.stat().st_size > MAX_BYTES
        result = _csv_large(job, name, path, progress) if large else _csv_file(job, name, path.read_bytes())
        if result.summary is not None:
            merged = csv_summaries_merge(merged, result.summary)
        progress.file(position, len(job.files), result)
    return merged or {}


def _csv_import(job: ImportJob, name: str, data: bytes, *, dry_run: bool = False) -> ImportReport:
    return labs_import(
        by=job.created_by, clinic=job.clinic, data=data, filename=name, fmt=job.options["format"],
        mrn=job.options["mrn"], skip_bad_rows=job.options["skip_bad_rows"], dry_run=dry_run,
    )  # fmt: skip


def _csv_refusal(name: str, report: ImportReport, first_row: int = 2, *, done: int = 0) -> FileResult:
    if report.error:
        return FileResult(name, report.rows, None, [report.error])
    offset = first_row - 2
    problems = [f"row {p.row + offset}, {p.column}: {p.reason}" if p.row else p.reason for p in report.problems[:20]]
    headline = f"{report.bad_rows} row(s) have problems; nothing of this file was imported. Fix them, or skip bad rows."
    if done:
        headline = f"{report.bad_rows} row(s) have problems; {done:,} rows before them were imported."
    return FileResult(name, report.rows, None, [headline, *problems])


def _csv_file(job: ImportJob, name: str, data: bytes) -> FileResult:
    report = _csv_import(job, name, data)
    if report.refused:
        return _csv_refusal(name, report)
    return FileResult(name, report.rows, report.summary())


def _csv_large(job: ImportJob, name: str, path: Path, progress: _Progress) -> FileResult:
    """A file over the CSV limit, in parts (`csv_parts`). Without skip_bad_rows every part is checked (a dry run)
    before the first is written, so a file with a problem writes nothing, as a small one."""
    try:
        if not job.options["skip_bad_rows"]:
            checked = 0
            for first_row, data in csv_parts(path):
                report = _csv_import(job, name, data, dry_run=True)
                if report.refused:
                    return _csv_refusal(name, report, first_row)
                checked += report.rows
                progress.save(f"{name}: {checked:,} rows checked")
        merged, done = None, 0
        for first_row, data in csv_parts(path):
            report = _csv_import(job, name, data)
            if report.refused:  # changed since it was checked (a patient removed meanwhile)
                return _csv_refusal(name, report, first_row, done=done)
            merged = csv_summaries_merge(merged, rows_shift(report.summary(), first_row))
            done += report.rows
            progress.save(f"{name}: {done:,} rows imported")
    except UnreadableFile as exc:
        return FileResult(name, 0, None, [str(exc)])
    return FileResult(name, done, merged)


def csv_summaries_merge(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """Two `labs_import` summaries as one, of the same shape (lists capped, counts complete)."""
    if total is None:
        return {**part, "problems": [{"file": part["filename"], **p} for p in part["problems"]]}
    for key in ("rows", "bad_rows", "values", "to_create", "created", "duplicates", "patients", "problem_count",
                "critical_count"):  # fmt: skip
        total[key] += part[key]
    for key in ("unknown_columns", "unknown_codes"):
        total[key] = sorted({*total[key], *part[key]})
    problems = [{"file": part["filename"], **p} for p in part["problems"]]
    total["problems"] = (total["problems"] + problems)[:MAX_REPORTED_PROBLEMS]
    total["critical"] = (total["critical"] + part["critical"])[:MAX_REPORTED_CRITICAL]
    analytes = {row["code"]: dict(row) for row in total["analytes"]}
    for row in part["analytes"]:
        if row["code"] in analytes:
            for key in ("values", "new", "present"):
                analytes[row["code"]][key] += row[key]
        else:
            analytes[row["code"]] = dict(row)
    total["analytes"], total["filename"] = list(analytes.values()), ""
    return total


def import_job_execute(*, job_id: int) -> ImportJob | None:
    """Run the job if it is ours to run (see `_claim`); return it finished, or None when it was not claimed."""
    job = _claim(job_id)
    if job is None:
        return None
    progress = _Progress(job)
    progress.save("Starting")
    try:
        with uploads.job_files_local(job.files) as paths:  # from the database to this host's own disk
            summary = (_run_fhir if job.kind == ImportJobKind.FHIR else _run_csv)(job, progress, paths)
    except Exception as exc:
        logger.exception("Import job %s failed", job.pk)
        return _finish(job, progress, summary={}, error=f"The import stopped: {type(exc).__name__}: {exc}")
    refused = [row for row in progress.rows if not row["ok"]]
    error = ""
    if refused:
        error = f"{len(refused)} of {len(job.files)} file(s) refused; nothing was imported from them. " + " ".join(
            f"{row['name']}: {row['error'][0] if row['error'] else 'refused'}" for row in refused[:5]
        )
    return _finish(job, progress, summary=summary, error=error)


def _finish(job: ImportJob, progress: _Progress, *, summary: dict[str, Any], error: str) -> ImportJob:
    status = ImportJobStatus.FAILED if error else ImportJobStatus.SUCCEEDED
    with transaction.atomic():
        job.status, job.error, job.finished_at = status, error, timezone.now()
        job.summary = {**summary, "files": progress.rows}
        job.progress = {"files_done": progress.files_done, "files_total": len(job.files),
                        "resources_done": progress.resources_done, "step": status.label}  # fmt: skip
        job.save(update_fields=["status", "summary", "error", "finished_at", "progress"])
        audit_record(
            actor=job.created_by, username=job.created_by_name, action="import_job.finish", target=job,
            outcome=AuditOutcome.FAILURE if error else AuditOutcome.SUCCESS,
            detail={"files": len(job.files), "refused": [row["name"] for row in progress.rows if not row["ok"]],
                    "error": error[:500]},
        )  # fmt: skip
    uploads.job_files_delete(job.files)
    return job
