"""Acceptance: two 50 MB imports at once leave the web tier answering other requests.

A live (threaded) server takes two ~50 MB uploads to the jobs endpoint. Each upload sends half its body and
waits; while both are in flight, another request is answered. Then each finishes and is answered 202 with a
queued job: the request stored the file and never ran the import. The jobs go to a queue of the test's own on an
in-memory broker that no worker reads, so nothing but the requests could have touched them.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from urllib.parse import urlparse

import pytest
from knox.models import AuthToken

from clinic.blobs import blob_read
from clinic.testing import tasks_on_real_workers
from patients.models import ImportJob, ImportJobStatus, Observation, Patient
from patients.tests.test_import_jobs import bulk_export

UPLOAD_BYTES = 50 * 1024 * 1024


def _export_of(size: int) -> bytes:
    """An Observation NDJSON file of about `size` bytes (a real export's lines, repeated)."""
    lines = bulk_export(1, visits=3)["Observation.000.ndjson"]
    return lines * (size // len(lines) + 1)


def _multipart(name: str, data: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/fhir+ndjson\r\n\r\n").encode()  # fmt: skip
    return boundary, head + data + f"\r\n--{boundary}--\r\n".encode()


class _Upload(threading.Thread):
    """POSTs a body in two halves: the first at once, the second once `proceed` is set."""

    def __init__(self, address: tuple[str, int], token: str, name: str, data: bytes):
        super().__init__(daemon=True)
        self.address, self.token = address, token
        self.boundary, self.body = _multipart(name, data)
        self.half_sent, self.proceed = threading.Event(), threading.Event()
        self.status: int | None = None
        self.answer: dict = {}

    def run(self) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=300)
        connection.putrequest("POST", "/api/v1/imports/jobs/")
        connection.putheader("Authorization", f"Token {self.token}")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={self.boundary}")
        connection.putheader("Content-Length", str(len(self.body)))
        connection.endheaders()
        half = len(self.body) // 2
        connection.send(self.body[:half])
        self.half_sent.set()
        self.proceed.wait(300)
        connection.send(self.body[half:])
        response = connection.getresponse()
        self.status, self.answer = response.status, json.loads(response.read())
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_50_mb_imports_at_once_leave_the_web_tier_answering_other_requests(live_server, staff_a, settings,
                                                                                tmp_path):  # fmt: skip
    settings.VAR_DIR = tmp_path
    token = AuthToken.objects.create(user=staff_a)[1]
    url = urlparse(live_server.url)
    address = (url.hostname, url.port)
    data = _export_of(UPLOAD_BYTES)
    uploads_in_flight = [_Upload(address, token, f"Observation.{n:03d}.ndjson", data) for n in range(2)]

    with tasks_on_real_workers(broker_url="memory://"):
        for upload in uploads_in_flight:
            upload.start()
        assert all(upload.half_sent.wait(300) for upload in uploads_in_flight)

        other = http.client.HTTPConnection(*address, timeout=60)
        other.request("GET", "/api/v1/imports/jobs/", headers={"Authorization": f"Token {token}"})
        response = other.getresponse()
        answered = response.status, json.loads(response.read())

        assert answered == (200, [])  # answered, and before either upload had created its job
        assert all(upload.status is None for upload in uploads_in_flight)  # both still in flight

        for upload in uploads_in_flight:  # one after the other: the in-memory test database is one connection
            upload.proceed.set()
            upload.join(300)

    assert [upload.status for upload in uploads_in_flight] == [202, 202]
    assert [upload.answer["status"] for upload in uploads_in_flight] == ["queued", "queued"]
    jobs = list(ImportJob.objects.order_by("pk"))
    assert [job.status for job in jobs] == [ImportJobStatus.QUEUED] * 2  # never run inside a request
    assert [job.files[0]["size"] for job in jobs] == [len(data)] * 2
    assert all(len(blob_read(blob_id=job.files[0]["blob"])) == len(data) for job in jobs)
    assert not Patient.objects.exists()
    assert not Observation.objects.exists()
