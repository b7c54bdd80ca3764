"""Import jobs in the portal, the API and the commands: queued at once, followed, scoped to the clinic."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from patients.imports.jobs import import_job_execute
from patients.models import ImportJob, ImportJobStatus, Observation, Patient
from patients.tests.test_fhir import KNOWN_PER_VISIT
from patients.tests.test_import_jobs import bulk_export, create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_on_commit(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.IMPORT_JOBS_IN_THREAD = False


def _uploads(files: dict[str, bytes]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, data, content_type="application/fhir+ndjson") for name, data in files.items()]


# --- portal ------------------------------------------------------------------------------------------------------


def test_the_portal_stores_the_files_and_redirects_to_the_job_page_without_importing(client, staff_a):
    client.force_login(staff_a)

    response = client.post(reverse("imports:job_new"), {"files": _uploads(bulk_export(2)), "kind": "auto",
                                                         "format": "auto"})  # fmt: skip

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("imports:job_detail", args=[job.pk])
    assert job.status == ImportJobStatus.QUEUED  # the test's transaction never commits: the job was not run
    assert job.kind == "fhir"
    assert len(job.files) == len(bulk_export(2))
    assert not Patient.objects.exists()
    page = client.get(response.url)
    assert page.status_code == 200
    assert 'data-finished="false"' in page.content.decode()
    assert "js/import_job_progress.js" in page.content.decode()


def test_the_job_page_shows_the_summary_once_the_job_has_run(client, staff_a, django_capture_on_commit_callbacks):
    client.force_login(staff_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:job_new"), {"files": _uploads(bulk_export(2)), "kind": "fhir",
                                                             "format": "auto"})  # fmt: skip

    text = client.get(response.url).content.decode()
    job = ImportJob.objects.get()
    assert job.status == ImportJobStatus.SUCCEEDED, job.error
    assert 'data-testid="job-summary"' in text
    assert "2 created, 0 matched to patients on record" in text
    assert f"{job.summary['observations']['created']} created, 0 already stored" in text
    assert "CarePlan 2" in text  # the types this platform does not store, counted
    assert AuditEvent.objects.filter(action="import_job.view", object_id=str(job.pk)).count() == 1


def test_the_progress_endpoint_answers_counts_and_no_patient_data(client, staff_a, django_capture_on_commit_callbacks):
    client.force_login(staff_a)
    with django_capture_on_commit_callbacks(execute=True):
        job = create(staff_a, bulk_export(1))

    data = client.get(reverse("imports:job_progress", args=[job.pk])).json()

    assert data["status"] == "succeeded"
    assert data["finished"] is True
    assert data["files_done"] == data["files_total"] == len(job.files)
    assert data["progress"] == 1.0
    assert "summary" not in data


def test_the_jobs_list_shows_the_clinics_jobs_only(client, staff_a, doctor_b):
    mine = create(staff_a, bulk_export(1))
    theirs = create(doctor_b, bulk_export(1))
    client.force_login(staff_a)

    text = client.get(reverse("imports:job_list")).content.decode()

    assert reverse("imports:job_detail", args=[mine.pk]) in text
    assert reverse("imports:job_detail", args=[theirs.pk]) not in text


@pytest.mark.parametrize("name", ["imports:job_detail", "imports:job_progress"])
def test_another_clinics_job_is_404(client, staff_a, doctor_b, name):
    job = create(staff_a, bulk_export(1))
    client.force_login(doctor_b)

    assert client.get(reverse(name, args=[job.pk])).status_code == 404


@pytest.mark.parametrize("name", ["imports:job_new", "imports:job_list"])
def test_a_patient_account_gets_403_on_the_import_job_pages(client, patient_user_a, name):
    client.force_login(patient_user_a)

    assert client.get(reverse(name)).status_code == 403


def test_csv_and_fhir_files_together_are_refused_with_a_clear_message(client, staff_a):
    client.force_login(staff_a)
    files = [SimpleUploadedFile("labs.csv", b"mrn,analyte,value,unit,time\n"), *_uploads(bulk_export(1))]

    response = client.post(reverse("imports:job_new"), {"files": files, "kind": "auto", "format": "auto"})

    assert response.status_code == 200
    assert "CSV and FHIR files together" in response.content.decode()
    assert not ImportJob.objects.exists()


# --- API ---------------------------------------------------------------------------------------------------------


def test_the_api_answers_202_with_the_jobs_url_and_the_job_polls_to_its_summary(
    staff_a, django_capture_on_commit_callbacks
):
    api = APIClient()
    api.force_authenticate(staff_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(reverse("imports-api:job-list"), {"files": _uploads(bulk_export(2))}, format="multipart")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"  # as queued: the answer did not wait for the import
    assert body["summary"] is None
    assert response["Location"] == body["url"]
    polled = api.get(body["url"]).json()
    assert polled["status"] == "succeeded"
    assert polled["finished"] is True
    assert polled["summary"]["patients"]["created_count"] == 2
    assert polled["summary"]["observations"]["created"] == 2 * 2 * KNOWN_PER_VISIT
    assert Observation.objects.count() == 2 * 2 * KNOWN_PER_VISIT


def test_the_api_refuses_a_post_without_files(staff_a):
    api = APIClient()
    api.force_authenticate(staff_a)

    response = api.post(reverse("imports-api:job-list"), {"kind": "fhir"}, format="multipart")

    assert response.status_code == 400
    assert "files" in response.json()
    assert not ImportJob.objects.exists()


def test_another_clinics_job_is_404_in_the_api_and_a_patient_account_is_403(staff_a, doctor_b, patient_user_a):
    job = create(staff_a, bulk_export(1))
    api = APIClient()
    api.force_authenticate(doctor_b)
    assert api.get(reverse("imports-api:job-detail", args=[job.pk])).status_code == 404
    assert [row["id"] for row in api.get(reverse("imports-api:job-list")).json()] == []

    api.force_authenticate(patient_user_a)
    response = api.post(reverse("imports-api:job-list"), {"files": _uploads(bulk_export(1))}, format="multipart")
    assert response.status_code == 403
    assert api.get(reverse("imports-api:job-detail", args=[job.pk])).status_code == 403
    assert ImportJob.objects.count() == 1


# --- commands ----------------------------------------------------------------------------------------------------


def _write(tmp_path, files: dict[str, bytes]) -> list[str]:
    folder = tmp_path / "export"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in files]


def test_the_command_imports_a_bulk_export_in_the_foreground_with_a_line_per_file(tmp_path, clinic_a):
    paths = _write(tmp_path, bulk_export(2))
    out = io.StringIO()

    call_command("import_fhir", *paths, "--clinic", "riverside", stdout=out)

    text = out.getvalue()
    assert f"[1/{len(paths)}] Patient.ndjson: 2 resources" in text
    assert f"[{len(paths)}/{len(paths)}]" in text
    assert f"All {len(paths)} imported files: NDJSON" in text
    assert "  patients: 2 created, 0 matched" in text
    assert Observation.objects.count() == 2 * 2 * KNOWN_PER_VISIT


def test_the_command_queues_a_job_in_the_background_and_import_job_follows_it_to_the_end(
    tmp_path, clinic_a, django_capture_on_commit_callbacks
):
    paths = _write(tmp_path, bulk_export(1))
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=False):
        call_command("import_fhir", *paths, "--clinic", "riverside", "--background", stdout=out)

    job = ImportJob.objects.get()
    assert f"Queued import job {job.pk}" in out.getvalue()
    assert job.status == ImportJobStatus.QUEUED
    assert job.created_by is None
    assert job.created_by_name == "manage.py import_fhir"

    import_job_execute(job_id=job.pk)  # what the worker does
    followed = io.StringIO()
    call_command("import_job", str(job.pk), stdout=followed)
    assert f"Job {job.pk} Succeeded: {len(paths)} of {len(paths)} files" in followed.getvalue()


def test_import_job_exits_non_zero_for_a_failed_job(tmp_path, clinic_a):
    paths = _write(tmp_path, {"Observation.ndjson": b"{oops\n"})
    call_command("import_fhir", *paths, "--clinic", "riverside", "--background", stdout=io.StringIO())
    job = ImportJob.objects.get()
    import_job_execute(job_id=job.pk)

    with pytest.raises(CommandError, match="Observation.ndjson: line 1: not valid JSON"):
        call_command("import_job", str(job.pk), stdout=io.StringIO())


# --- query counts ------------------------------------------------------------------------------------------------


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("name", ["imports:job_list", "imports-api:job-list"])
def test_the_jobs_lists_run_the_same_queries_for_six_jobs_as_for_one(client, staff_a, doctor_a, name):
    client.force_login(staff_a)
    create(staff_a, bulk_export(1))
    client.get(reverse(name))  # the first request of a session loads what later ones find cached
    one = _queries(client, reverse(name))

    for user in (staff_a, doctor_a) * 2 + (doctor_a,):
        create(user, {"Patient.ndjson": b"{}"})
    six = _queries(client, reverse(name))

    assert six == one
