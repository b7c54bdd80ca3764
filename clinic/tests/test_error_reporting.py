"""Unhandled errors reach the operators: by e-mail to ADMINS, and to Sentry when SENTRY_DSN is set, without patient
data either way."""

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from clinic.testing import ROOT
from patients.tests.test_escalation import Inbox, free_port

ADMIN = "ops@riverside.example"


@pytest.fixture
def inbox(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.ADMINS = [("Operations", ADMIN)]
    settings.ROOT_URLCONF = "clinic.tests.urls_failing"
    settings.DEBUG = False
    yield inbox
    controller.stop()


def test_an_unhandled_error_is_mailed_to_the_admins_with_its_request_id_and_no_patient_data(inbox, doctor_a):
    client = Client(raise_request_exception=False)
    client.force_login(doctor_a)

    response = client.post("/fail/?mrn=SECRET-MRN-77", {"given_name": "Philippa"}, HTTP_USER_AGENT="Agent-Philippa")

    assert response.status_code == 500
    (message,) = inbox.to(ADMIN)
    body = message.get_payload(decode=True).decode()
    assert "Internal Server Error: /fail/" in message["Subject"]
    assert f"request id: {response['X-Request-ID']}" in body  # the id the 500 page shows the user
    assert f"user id: {doctor_a.pk}" in body
    assert "Traceback (most recent call last)" in body
    assert "RuntimeError: unexpected state (8 characters)" in body
    session = client.cookies["sessionid"].value
    for leak in ("Philippa", "SECRET-MRN-77", "Agent-Philippa", session, "SECRET_KEY", "AUDIT_HMAC_KEY"):
        assert leak not in message.as_string(), leak


def test_an_answer_of_503_without_an_error_is_not_mailed(inbox, admin_a):
    client = Client()
    client.force_login(admin_a)

    response = client.get("/fail/unavailable/")

    assert response.status_code == 503
    assert inbox.received == []


class _SentryServer(BaseHTTPRequestHandler):
    """Sentry's ingestion endpoint as far as the SDK sees it: keeps each envelope it is sent."""

    envelopes: list[str]

    def do_POST(self):  # noqa: N802  (http.server's method name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.envelopes.append(body.decode())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry_server():
    handler = type("Handler", (_SentryServer,), {"envelopes": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, handler.envelopes
    server.shutdown()


# A process as gunicorn runs the web (settings from the environment, the WSGI application), which fails a request
# holding patient data in its query string, form fields, cookies and headers.
_PROCESS = """
import io, json, sys, wsgiref.util
import django
django.setup()
report = {"sentry_imported": "sentry_sdk" in sys.modules}
import sentry_sdk
from django.core.wsgi import get_wsgi_application
from django.test.utils import override_settings
client = sentry_sdk.get_client()
report.update(active=client.is_active(), integrations=sorted(client.integrations),
              send_default_pii=client.options["send_default_pii"])
if client.is_active():
    body = b"given_name=Philippa"
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/fail/", "QUERY_STRING": "mrn=SECRET-MRN-77",
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "HTTP_COOKIE": "csrftoken=Cookie-Secret-42",
               "HTTP_USER_AGENT": "Agent-Philippa", "HTTP_HOST": "testserver"}
    wsgiref.util.setup_testing_defaults(environ)
    answer = {}
    with override_settings(ROOT_URLCONF="clinic.tests.urls_failing", DEBUG=False):
        b"".join(get_wsgi_application()(environ, lambda status, headers: answer.update(status=status, headers=headers)))
    report.update(status=int(answer["status"][:3]), request_id=dict(answer["headers"])["X-Request-ID"])
    sentry_sdk.flush(timeout=20)
print(json.dumps(report))
"""


def _web_process(tmp_path, **env) -> dict:
    environment = {**os.environ, "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "clinic.settings", **env}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "SENTRY_DSN"):
        if name not in env:
            environment.pop(name, None)
    done = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", _PROCESS], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_a_dsn_sentry_is_not_started(tmp_path):
    report = _web_process(tmp_path)

    assert report["sentry_imported"] is False
    assert report["active"] is False


def test_with_a_dsn_an_error_reaches_sentry_scrubbed_of_patient_data(tmp_path, sentry_server):
    server, envelopes = sentry_server
    dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"

    report = _web_process(tmp_path, SENTRY_DSN=dsn)

    assert report["active"] is True
    assert {"django", "celery"} <= set(report["integrations"])
    assert report["send_default_pii"] is False
    assert report["status"] == 500
    events = [json.loads(line) for envelope in envelopes for line in envelope.splitlines() if '"exception"' in line]
    (event,) = events
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "unexpected state (8 characters)")
    assert event["tags"]["request_id"] == report["request_id"]  # the id the 500 page shows, as in the logs
    assert event["request"] == {"method": "POST", "url": "http://testserver/fail/"}
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    everything = "".join(envelopes)
    for leak in ("Philippa", "SECRET-MRN-77", "Cookie-Secret-42", "Agent-Philippa"):
        assert leak not in everything, leak
