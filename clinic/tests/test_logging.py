"""JSON logs: every line of a request carries its id, the access line included; tasks carry theirs."""

import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid

import pytest
from django.test import Client
from knox.models import AuthToken

from clinic.logging import ContextFilter, JsonFormatter, LogContext, log_context_reset, log_context_set
from clinic.testing import ROOT, wait_for, worker_start
from clinic.tests.test_settings import PRODUCTION_ENV
from patients.tests.factories import PatientFactory


@pytest.fixture
def json_log():
    """What the production console handler writes (LOG_FORMAT=json), parsed: one dict per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]  # each line one JSON object

    yield lines
    root.removeHandler(handler)
    root.setLevel(previous_level)


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = "reliability.tests.urls_failing"
    settings.DEBUG = False


def test_every_line_of_a_request_carries_its_id_and_the_access_line_names_the_user(json_log, doctor_a, clinic_a):
    PatientFactory(clinic=clinic_a, given_name="Philippa", family_name="Quarrington")
    client = Client()
    client.force_login(doctor_a)

    response = client.get("/patients/?q=Quarrington&page=1", HTTP_X_REQUEST_ID="client-trace-7")

    lines = json_log()
    request_id = response["X-Request-ID"]
    assert response.status_code == 200
    assert {line["logger"] for line in lines} >= {"clinic.middleware", "clinic.access"}  # an app line and the access
    assert all(line["request_id"] == request_id for line in lines), lines
    (access,) = [line for line in lines if line["logger"] == "clinic.access"]
    assert access["method"] == "GET"
    assert access["path"] == "/patients/"
    assert access["query_params"] == ["page", "q"]  # the names, never the values
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert (access["user_id"], access["clinic_id"]) == (doctor_a.pk, clinic_a.pk)
    assert "Quarrington" not in json.dumps(lines)


def test_an_api_call_with_a_token_is_logged_under_the_user_the_token_names(json_log, doctor_a):
    token = AuthToken.objects.create(user=doctor_a)[1]

    response = Client().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token}")

    (access,) = [line for line in json_log() if line["logger"] == "clinic.access"]
    assert (access["status"], access["request_id"]) == (200, response["X-Request-ID"])
    assert access["user_id"] == doctor_a.pk
    assert token not in json.dumps(json_log())


def test_two_requests_log_under_two_ids(json_log, doctor_a):
    client = Client()
    client.force_login(doctor_a)

    first, second = client.get("/patients/"), client.get("/patients/")

    ids = [line["request_id"] for line in json_log() if line["logger"] == "clinic.access"]
    assert ids == [first["X-Request-ID"], second["X-Request-ID"]]
    assert ids[0] != ids[1]


def test_an_anonymous_request_is_logged_without_loading_a_user(db, json_log, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/accounts/login/")

    (access,) = [line for line in json_log() if line["logger"] == "clinic.access"]
    assert access["status"] == response.status_code == 200
    assert "user_id" not in access


def test_the_access_line_redacts_an_import_token_in_the_path(json_log, staff_a):
    client = Client()
    client.force_login(staff_a)

    client.get("/patients/import/Sup3rSecretImportToken/")

    (access,) = [line for line in json_log() if line["logger"] == "clinic.access"]
    assert access["path"] == "/patients/import/[redacted]/"
    assert "Sup3rSecretImportToken" not in json.dumps(json_log())


@pytest.mark.reliability(21, "A portal page that raises: the request id the 500 page shows finds, in the JSON log, "
                             "the line with the traceback")  # fmt: skip
def test_the_request_id_on_a_500_page_finds_the_traceback_in_the_log(json_log, failing_urls, doctor_a, clinic_a):
    PatientFactory(clinic=clinic_a)
    client = Client(raise_request_exception=False)
    client.force_login(doctor_a)

    response = client.get("/boom/")

    request_id = response["X-Request-ID"]
    assert response.status_code == 500
    assert request_id in response.content.decode()  # what the user reads out to the admin
    found = [line for line in json_log() if line["request_id"] == request_id]  # what the admin greps for
    (error,) = [line for line in found if line["level"] == "ERROR"]
    assert error["logger"] == "django.request"
    assert error["message"] == "Internal Server Error: /boom/"
    assert "Traceback (most recent call last)" in error["exception"]
    assert "RuntimeError: unexpected state for patient" in error["exception"]
    assert error["user_id"] == doctor_a.pk
    assert [line["status"] for line in found if line["logger"] == "clinic.access"] == [500]


def test_a_task_run_while_serving_a_request_logs_the_request_and_task_ids(db, json_log):
    from clinic.tasks import outbox_drain

    token = log_context_set(LogContext(request_id="req-1234"))
    try:
        result = outbox_drain.apply()
        logging.getLogger("clinic.tasks").info("after the task")
    finally:
        log_context_reset(token)

    lines = json_log()
    during = [line for line in lines if line.get("task_id") == result.id]
    assert during, lines
    assert {line["request_id"] for line in during} == {"req-1234"}
    assert {line["task_name"] for line in during} == {"clinic.tasks.outbox_drain"}
    after = lines[-1]
    assert (after["message"], after["request_id"], after.get("task_id")) == ("after the task", "req-1234", None)


def test_a_text_line_shows_the_request_id_for_a_developer():
    from clinic.logging import TextFormatter

    record = logging.LogRecord("clinic.x", logging.INFO, __file__, 1, "saved %s", ("it",), None)
    ContextFilter().filter(record)
    token = log_context_set(LogContext(request_id="abc"))
    try:
        with_id = logging.LogRecord("clinic.x", logging.INFO, __file__, 1, "saved %s", ("it",), None)
        ContextFilter().filter(with_id)
    finally:
        log_context_reset(token)

    assert TextFormatter().format(record).endswith("INFO clinic.x saved it")
    assert TextFormatter().format(with_id).endswith("INFO clinic.x saved it [request_id=abc]")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_logs_json_lines_with_the_task_id_and_the_id_of_the_request_that_enqueued_it(clinic_a):
    from clinic.celery import app
    from clinic.tasks import outbox_drain

    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = worker_start(queue, env={"LOG_FORMAT": "json"})
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(worker.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        app.conf.task_always_eager = False
        token = log_context_set(LogContext(request_id="req-from-the-web-1"))
        try:
            result = outbox_drain.apply_async(queue=queue)
        finally:
            log_context_reset(token)
        finished = wait_for(lambda: any("succeeded" in line for line in output), seconds=90)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        reader.join(timeout=20)
    assert finished, "".join(output)
    lines = [json.loads(line) for line in output if line.startswith("{")]
    done = [line for line in lines if line.get("task_id") == result.id]
    assert any("succeeded" in line["message"] for line in done), lines
    assert {line["request_id"] for line in done} == {"req-from-the-web-1"}


_LOG_A_LINE = """
import json, logging
import django
django.setup()
from django.conf import settings
logging.getLogger("clinic.example").warning("a line from %s", "startup")
print(json.dumps(settings.ADMINS))
"""


def _process(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "LOG_FORMAT", "ADMINS", "SENTRY_DSN"}}
    return subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", _LOG_A_LINE], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "clinic.settings", **env},
    )  # fmt: skip


def test_production_logs_json_lines_and_reads_admins_from_the_environment():
    done = _process(**PRODUCTION_ENV, ADMINS="Ops Team <ops@clinic.example.org>, oncall@clinic.example.org")

    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(line) for line in done.stderr.splitlines() if "a line from" in line]
    assert line["level"] == "WARNING"
    assert line["logger"] == "clinic.example"
    assert line["message"] == "a line from startup"
    assert line["request_id"] is None  # no request: the key is there, empty
    assert json.loads(done.stdout) == [["Ops Team", "ops@clinic.example.org"], ["", "oncall@clinic.example.org"]]


def test_development_logs_readable_text():
    done = _process(LOG_FORMAT="")

    assert done.returncode == 0, done.stderr
    assert "WARNING clinic.example a line from startup" in done.stderr


@pytest.mark.parametrize(
    ("variable", "value"), [("LOG_FORMAT", "xml"), ("ADMINS", "Ops Team")], ids=["log-format", "admins"]
)
def test_a_bad_logging_setting_refuses_to_start(variable, value):
    done = _process(**{variable: value})

    assert done.returncode != 0
    assert variable in done.stderr


def test_a_development_server_line_that_carries_its_socket_as_request_is_logged_not_raised():
    """runserver's `django.server` lines pass the connection's socket as `request`: the filter must not read it as
    Django's request (it raised, and runserver dropped the connection of every answer it logged)."""
    import socket

    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', ("POST / HTTP/1.1", 302, 0), None
    )
    with socket.socket() as connection:
        record.request = connection

        assert ContextFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))

    assert (line["message"], line.get("user_id"), line.get("request_id")) == ('"POST / HTTP/1.1" 302 0', None, None)
