"""Import jobs: a bulk import queued by the web (or a command), run by a worker, its progress and summary shown.

Jobs run on commit in these tests (`IMPORT_JOBS_IN_THREAD` off, Celery eager); the portal and API tests are in
test_import_jobs_web.py, the acceptance test with concurrent 50 MB uploads in test_import_jobs_live.py.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from clinic.blobs import blob_read
from clinic.models import AuditEvent, Blob
from patients.fhir import bulk
from patients.imports import csv_parts, jobs
from patients.imports.selectors import import_job_progress
from patients.models import Condition, ImportJob, ImportJobStatus, Observation, Patient
from patients.tests.factories import PatientFactory
from patients.tests.test_fhir import KNOWN_PER_VISIT, synthea_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_on_commit(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.IMPORT_JOBS_IN_THREAD = False


def bulk_export(patients: int, visits: int = 2, *, observation_files: int = 2) -> dict[str, bytes]:
    """A Bulk Data $export of `patients` Synthea patients: one NDJSON file per resource type (Observations split
    over `observation_files`), subjects as Patient/<id> naming a resource of another file."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for number in range(patients):
        bundle = synthea_bundle(visits=visits, mrn=f"BULK-{number:04d}", seed=number)
        resources = [entry["resource"] for entry in bundle["entry"]]
        patient_ref = f"Patient/{resources[0]['id']}"
        for resource in resources:
            if "subject" in resource:
                resource["subject"] = {"reference": patient_ref}
            by_type.setdefault(resource["resourceType"], []).append(resource)
    files = {}
    observations = by_type.pop("Observation")
    for part in range(observation_files):
        files[f"Observation.{part:03d}.ndjson"] = _ndjson(observations[part::observation_files])
    files |= {f"{kind}.ndjson": _ndjson(resources) for kind, resources in by_type.items()}
    return files  # Observation files first, as a directory listing would sort them: the Patient file comes later


def _ndjson(resources: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(resource) for resource in resources).encode() + b"\n"


def create(by, files: dict[str, bytes], *, kind="fhir", clinic=None, **options) -> ImportJob:
    return jobs.import_job_create(
        by=by, clinic=clinic or by.clinic, kind=kind, files=[(name, [data]) for name, data in files.items()],
        options=options,
    )  # fmt: skip


def run(by, files: dict[str, bytes], django_capture_on_commit_callbacks, **kwargs) -> ImportJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = create(by, files, **kwargs)
    job.refresh_from_db()
    return job


# --- lifecycle ---------------------------------------------------------------------------------------------------


def test_a_new_job_is_queued_with_its_files_in_the_database_and_nothing_imported(
    staff_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = create(staff_a, bulk_export(2))

    assert job.status == ImportJobStatus.QUEUED
    assert len(callbacks) == 1  # enqueued once the row commits, never inside the transaction
    assert {entry["name"] for entry in job.files} >= {"Patient.ndjson", "Observation.000.ndjson"}
    # In the database, not on this host's disk: a worker on another host runs the job.
    assert all(len(blob_read(blob_id=entry["blob"])) == entry["size"] for entry in job.files)
    assert not Patient.objects.exists()
    assert AuditEvent.objects.filter(action="import_job.create", object_id=str(job.pk)).exists()


def test_a_bulk_export_split_by_resource_type_imports_whole_with_subjects_resolved_across_files(
    staff_a, django_capture_on_commit_callbacks, monkeypatch, tmp_path
):
    monkeypatch.setattr(bulk, "CHUNK_RESOURCES", 7)  # many chunks: a chunk's subjects are in another file

    job = run(staff_a, bulk_export(3), django_capture_on_commit_callbacks)

    assert job.status == ImportJobStatus.SUCCEEDED, job.error
    assert Patient.objects.filter(clinic=staff_a.clinic).count() == 3
    assert Observation.objects.count() == 3 * 2 * KNOWN_PER_VISIT
    assert Condition.objects.count() == 3 * 2  # per patient: diabetes (mapped from SNOMED CT) and an ICD-10 one
    summary = job.summary
    assert summary["patients"]["created_count"] == 3
    assert summary["patients"]["matched_count"] == 0  # the patients carried into later chunks are not counted
    assert summary["observations"]["created"] == 3 * 2 * KNOWN_PER_VISIT
    assert summary["conditions"]["created"] == 6
    assert summary["problems_skipped"] == 0, summary["problems"]
    assert summary["skipped_resource_types"]["CarePlan"] == 3
    assert [row["name"] for row in summary["files"]][0] == "Patient.ndjson"  # patients first, whatever the order
    assert all(row["ok"] for row in summary["files"])
    assert job.progress["files_done"] == job.progress["files_total"] == len(job.files)
    assert not Blob.objects.filter(pk__in=[entry["blob"] for entry in job.files]).exists()  # removed once finished
    assert not list((tmp_path / "imports").iterdir())  # nor is the worker's local copy left behind


def test_running_the_same_job_again_writes_nothing_twice(staff_a, django_capture_on_commit_callbacks):
    files = bulk_export(2)
    run(staff_a, files, django_capture_on_commit_callbacks)
    counts = Patient.objects.count(), Observation.objects.count(), Condition.objects.count()

    again = run(staff_a, files, django_capture_on_commit_callbacks)

    assert again.status == ImportJobStatus.SUCCEEDED
    assert (Patient.objects.count(), Observation.objects.count(), Condition.objects.count()) == counts
    assert again.summary["patients"]["matched_count"] == 2
    assert again.summary["observations"]["duplicates"] == 2 * 2 * KNOWN_PER_VISIT


def test_a_job_already_finished_does_nothing_when_its_message_comes_again(staff_a, django_capture_on_commit_callbacks):
    job = run(staff_a, bulk_export(1), django_capture_on_commit_callbacks)

    assert jobs.import_job_execute(job_id=job.pk) is None
    assert ImportJob.objects.get(pk=job.pk).finished_at == job.finished_at


def test_a_job_left_running_by_a_lost_worker_is_taken_over_once_stale_and_completes(
    staff_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create(staff_a, bulk_export(1))
    fresh = datetime.datetime.now(tz=datetime.UTC)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.RUNNING, heartbeat_at=fresh)

    assert jobs.import_job_execute(job_id=job.pk) is None  # a live worker holds it
    assert jobs.import_job_busy(job_id=job.pk)

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=fresh - jobs.STALE_AFTER * 2)
    finished = jobs.import_job_execute(job_id=job.pk)

    assert finished.status == ImportJobStatus.SUCCEEDED
    assert Observation.objects.count() == 2 * KNOWN_PER_VISIT


def test_a_bad_file_fails_the_job_with_a_clear_error_and_writes_nothing_of_that_file(
    staff_a, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(bulk, "CHUNK_RESOURCES", 5)
    files = bulk_export(2)
    good = files.pop("Observation.001.ndjson").splitlines()
    files["Observation.001.ndjson"] = b"\n".join([*good[:12], b"{not json", *good[12:]])  # a bad line in chunk 3

    job = run(staff_a, files, django_capture_on_commit_callbacks)

    assert job.status == ImportJobStatus.FAILED
    assert f"1 of {len(files)} file(s) refused" in job.error
    assert "Observation.001.ndjson: line 13: not valid JSON" in job.error
    refused = next(row for row in job.summary["files"] if not row["ok"])
    assert refused["name"] == "Observation.001.ndjson"
    assert Observation.objects.count() == job.summary["observations"]["created"]  # the other Observation file's
    assert AuditEvent.objects.get(action="import_job.finish", object_id=str(job.pk)).outcome == "failure"

    fixed = run(staff_a, {"Patient.ndjson": files["Patient.ndjson"], "Observation.001.ndjson": b"\n".join(good)},
                django_capture_on_commit_callbacks)  # fmt: skip

    assert fixed.status == ImportJobStatus.SUCCEEDED
    assert Observation.objects.count() == 2 * 2 * KNOWN_PER_VISIT  # the rest, once the file is corrected


def _without_birth_date(files: dict[str, bytes], index: int) -> dict[str, bytes]:
    patients = [json.loads(line) for line in files["Patient.ndjson"].splitlines()]
    del patients[index]["birthDate"]
    return {**files, "Patient.ndjson": _ndjson(patients)}


def test_an_unreadable_patient_is_skipped_and_listed_with_its_results_and_the_others_are_imported(
    staff_a, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(bulk, "CHUNK_RESOURCES", 1)  # the bad patient is in the second chunk
    files = _without_birth_date(bulk_export(2), 1)

    job = run(staff_a, files, django_capture_on_commit_callbacks)

    assert job.status == ImportJobStatus.SUCCEEDED, job.error
    assert list(Patient.objects.values_list("mrn", flat=True)) == ["BULK-0000"]
    assert Observation.objects.count() == 2 * KNOWN_PER_VISIT  # the readable patient's; none for the other
    assert any("Patient.ndjson: line 2" in line for line in job.summary["unreadable"])
    assert job.summary["unreadable_skipped"] > 1  # the patient, and each of its results that had nowhere to go


def test_with_strict_a_patient_file_with_an_unreadable_patient_is_refused_whole(
    staff_a, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(bulk, "CHUNK_RESOURCES", 1)
    files = _without_birth_date(bulk_export(2), 1)

    job = run(staff_a, files, django_capture_on_commit_callbacks, strict=True)

    assert job.status == ImportJobStatus.FAILED
    assert "Patient.ndjson: Nothing was imported (strict)" in job.error
    assert not Patient.objects.exists()  # the first chunk's patient neither
    assert not Observation.objects.exists()


def test_a_clinically_wrong_value_late_in_a_file_refuses_the_file_before_anything_of_it_is_written(
    staff_a, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(bulk, "CHUNK_RESOURCES", 5)
    files = bulk_export(2, observation_files=1)
    lines = files["Observation.000.ndjson"].splitlines()
    last = json.loads(lines[-3])
    last["valueQuantity"] = {"value": 5000, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    last["code"] = {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]}
    files["Observation.000.ndjson"] = b"\n".join([*lines[:-3], json.dumps(last).encode(), *lines[-2:]])

    refused = run(staff_a, files, django_capture_on_commit_callbacks)

    assert refused.status == ImportJobStatus.FAILED
    errors = next(row["error"] for row in refused.summary["files"] if row["name"] == "Observation.000.ndjson")
    assert errors[0].startswith("Nothing was imported: 1 resource(s) cannot be stored.")
    assert errors[1].startswith(f"line {len(lines) - 2} (Observation/")
    assert not Observation.objects.exists()

    skipped = run(staff_a, files, django_capture_on_commit_callbacks, skip_bad=True)

    assert skipped.status == ImportJobStatus.SUCCEEDED
    assert Observation.objects.count() == 2 * 2 * KNOWN_PER_VISIT - 1
    assert skipped.summary["problems_skipped"] == 1


def test_progress_is_saved_between_files_while_the_job_runs(staff_a, django_capture_on_commit_callbacks, monkeypatch):
    seen = []
    original = jobs._Progress.file

    def spy(self, position, total, result):
        original(self, position, total, result)
        seen.append((ImportJob.objects.get(pk=self.job.pk).status, _progress(self.job.pk)))

    monkeypatch.setattr(jobs._Progress, "file", spy)

    job = run(staff_a, bulk_export(1), django_capture_on_commit_callbacks)

    assert [status for status, _ in seen] == [ImportJobStatus.RUNNING] * len(job.files)
    assert [progress["files_done"] for _, progress in seen] == list(range(1, len(job.files) + 1))
    assert seen[0][1]["resources_done"] == 1  # the Patient file, read first


def _progress(pk: int) -> dict[str, Any]:
    return import_job_progress(job=ImportJob.objects.get(pk=pk))


def test_a_folder_of_per_patient_bundles_imports_each_as_its_own_file(staff_a, django_capture_on_commit_callbacks):
    files = {f"patient-{n}.json": json.dumps(synthea_bundle(visits=1, mrn=f"SYN-{n}", seed=n)).encode()
             for n in range(3)}  # fmt: skip

    job = run(staff_a, files, django_capture_on_commit_callbacks)

    assert job.status == ImportJobStatus.SUCCEEDED
    assert sorted(job.summary["patients"]["created"]) == ["SYN-0", "SYN-1", "SYN-2"]
    assert job.summary["observations"]["created"] == 3 * KNOWN_PER_VISIT
    assert AuditEvent.objects.filter(action="fhir.import").count() == 3  # each file audited by the import itself


def test_a_csv_job_imports_lab_files_and_refuses_a_bad_one_whole(staff_a, django_capture_on_commit_callbacks):
    PatientFactory(clinic=staff_a.clinic, mrn="A-1")
    header = b"mrn,analyte,value,unit,time\n"
    good = header + b"A-1,glucose,126,mg/dL,2026-03-01T08:30\nA-1,potassium,7.1,mmol/L,2026-03-01T08:30\n"
    bad = header + b"A-1,glucose,126,mg/dL,2026-03-02T08:30\nZ-9,glucose,99,mg/dL,2026-03-02T08:30\n"

    job = run(staff_a, {"good.csv": good, "bad.csv": bad}, django_capture_on_commit_callbacks, kind="csv")

    assert job.status == ImportJobStatus.FAILED
    assert "bad.csv" in job.error
    assert Observation.objects.count() == 2  # the good file's; nothing of the bad one
    assert job.summary["created"] == 2
    assert job.summary["critical_count"] == 1  # potassium 7.1: to act on promptly


# --- who may queue a job -----------------------------------------------------------------------------------------


def test_a_patient_account_cannot_queue_an_import_and_nothing_is_stored(patient_user_a, tmp_path):
    with pytest.raises(PermissionDenied):
        create(patient_user_a, bulk_export(1))

    assert not ImportJob.objects.exists()
    assert not Blob.objects.exists()


def test_staff_cannot_queue_an_import_into_another_clinic(staff_a, clinic_b):
    with pytest.raises(PermissionDenied):
        create(staff_a, bulk_export(1), clinic=clinic_b)


def test_a_job_without_files_is_refused_with_a_clear_message(staff_a):
    with pytest.raises(ValidationError, match="Attach at least one file"):
        create(staff_a, {})


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_job_runs_in_a_thread_so_the_request_that_queued_it_answers_at_once(
    staff_a, settings, monkeypatch
):
    settings.IMPORT_JOBS_IN_THREAD = True  # what `make run` does: Celery eager, no worker
    ran_on, done = [], threading.Event()
    execute = jobs.import_job_execute

    def recorded(**kwargs):
        ran_on.append(threading.current_thread())
        try:
            return execute(**kwargs)
        finally:
            done.set()

    monkeypatch.setattr(jobs, "import_job_execute", recorded)

    job = create(staff_a, bulk_export(1))

    assert job.status == ImportJobStatus.QUEUED
    assert done.wait(120)
    assert ran_on[0] is not threading.current_thread()
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED, job.error
    assert Observation.objects.count() == 2 * KNOWN_PER_VISIT


def test_progress_within_a_large_file_is_saved_every_chunk_while_it_is_checked_and_imported(
    staff_a, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(bulk, "CHUNK_RESOURCES", 10)
    steps = []
    real_import = bulk.fhir_import

    def watched(**kwargs):  # what a poller would read while this chunk imports
        steps.append(ImportJob.objects.get().progress["step"])
        return real_import(**kwargs)

    monkeypatch.setattr(bulk, "fhir_import", watched)

    run(staff_a, bulk_export(2, observation_files=1), django_capture_on_commit_callbacks)

    total = 2 * 2 * 20  # 2 patients, 2 visits of 20 observations
    assert f"Observation.000.ndjson: {total} resources checked" in steps
    assert f"Observation.000.ndjson: 10 of {total} resources imported" in steps
    assert f"Observation.000.ndjson: 70 of {total} resources imported" in steps


def _csv(rows: list[str]) -> bytes:
    return ("mrn,analyte,value,unit,time\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture
def small_parts(monkeypatch):
    """A CSV "too large for one import" at a few rows, cut into parts of two records."""
    monkeypatch.setattr(jobs, "MAX_BYTES", 100)
    monkeypatch.setattr(csv_parts, "PART_ROWS", 2)


def _lab_rows(mrn: str) -> list[str]:
    return [f"{mrn},glucose,{100 + day},mg/dL,2026-03-{day:02d}T08:30" for day in range(1, 6)]


def test_a_csv_over_the_limit_is_imported_in_parts_and_its_report_names_the_files_rows(
    staff_a, django_capture_on_commit_callbacks, small_parts
):
    PatientFactory(clinic=staff_a.clinic, mrn="A-1")
    rows = [*_lab_rows("A-1"), "A-1,potassium,7.2,mmol/L,2026-03-06T08:30"]  # the critical value is row 7

    job = run(staff_a, {"big.csv": _csv(rows)}, django_capture_on_commit_callbacks, kind="csv")

    assert job.status == ImportJobStatus.SUCCEEDED, job.error
    assert Observation.objects.count() == 6
    assert job.summary["created"] == 6
    assert [(value["row"], value["analyte"]) for value in job.summary["critical"]] == [(7, "potassium")]


def test_a_csv_over_the_limit_with_a_bad_row_in_its_last_part_writes_nothing_unless_bad_rows_are_skipped(
    staff_a, django_capture_on_commit_callbacks, small_parts
):
    PatientFactory(clinic=staff_a.clinic, mrn="A-1")
    data = _csv([*_lab_rows("A-1"), "Z-9,glucose,99,mg/dL,2026-03-07T08:30"])  # row 7: no such patient

    refused = run(staff_a, {"big.csv": data}, django_capture_on_commit_callbacks, kind="csv")

    assert refused.status == ImportJobStatus.FAILED
    assert refused.summary["files"][0]["error"][1].startswith("row 7, mrn: No patient with MRN Z-9")
    assert not Observation.objects.exists()

    skipped = run(staff_a, {"big.csv": data}, django_capture_on_commit_callbacks, kind="csv", skip_bad_rows=True)

    assert skipped.status == ImportJobStatus.SUCCEEDED
    assert Observation.objects.count() == 5
    assert [(p["row"], p["file"]) for p in skipped.summary["problems"]] == [(7, "big.csv")]


# --- the periodic sweep ------------------------------------------------------------------------------------------


def _age(job: ImportJob, *, status: str, minutes: int, resends: int = 0) -> None:
    then = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(minutes=minutes)
    ImportJob.objects.filter(pk=job.pk).update(status=status, created_at=then, heartbeat_at=then, resends=resends)


def test_the_sweep_sends_again_a_job_whose_message_was_lost_and_leaves_a_fresh_one(
    staff_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # both messages lost
        lost, fresh = create(staff_a, bulk_export(1)), create(staff_a, bulk_export(1))
    _age(lost, status=ImportJobStatus.QUEUED, minutes=30)

    with django_capture_on_commit_callbacks(execute=True):
        sent = jobs.import_jobs_resume_stalled()

    assert sent == [lost.pk]
    assert ImportJob.objects.get(pk=lost.pk).status == ImportJobStatus.SUCCEEDED
    assert ImportJob.objects.get(pk=fresh.pk).status == ImportJobStatus.QUEUED


def test_the_sweep_queues_again_a_job_whose_worker_was_lost_and_fails_it_after_the_last_resend(
    staff_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create(staff_a, bulk_export(1))
    _age(job, status=ImportJobStatus.RUNNING, minutes=30, resends=jobs.MAX_RESENDS - 1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs.import_jobs_resume_stalled() == [job.pk]
    job.refresh_from_db()
    assert len(callbacks) == 1
    assert (job.status, job.resends) == (ImportJobStatus.QUEUED, jobs.MAX_RESENDS)

    _age(job, status=ImportJobStatus.RUNNING, minutes=30, resends=jobs.MAX_RESENDS)  # lost again
    assert jobs.import_jobs_resume_stalled() == []

    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED
    assert f"stopped {jobs.MAX_RESENDS + 1} times" in job.error
    assert not Blob.objects.filter(pk__in=[entry["blob"] for entry in job.files]).exists()


def test_the_beat_schedule_runs_the_sweep_every_ten_minutes(settings):
    from clinic.celery import app

    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == "patients.tasks.resume_stalled_import_jobs"]  # fmt: skip

    assert entry["schedule"].minute == set(range(7, 60, 10))
    assert "patients.tasks.resume_stalled_import_jobs" in app.tasks
