"""The audited floor: what every signed-in request costs before its view does anything (bench/urls.py's
`bench/audited/`: the session, the user with their clinic, one audit row), and the hand-compiled queries it uses
(the user's, the audit row's INSERT) give what the ORM gives."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from clinic import audit
from clinic.audit import audit_first_break, audit_record, compute_hash
from clinic.backends import ClinicModelBackend, user_with_clinic
from clinic.models import AuditEvent, User
from clinic.testing import session_read_queries


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_backend_loads_the_user_and_their_clinic_as_the_orm_does_in_one_query(
    doctor_a, superuser, django_assert_num_queries
):
    with django_assert_num_queries(1):
        user = ClinicModelBackend().get_user(str(doctor_a.pk))  # the session keeps the id as a string
    with django_assert_num_queries(0):
        clinic = user.clinic

    expected = User.objects.select_related("clinic").get(pk=doctor_a.pk)
    assert type(user) is User
    assert _fields(user) == _fields(expected)
    assert _fields(clinic) == _fields(expected.clinic)
    assert (user._state.adding, user._state.db, clinic._state.db) == (False, "default", "default")
    assert user.get_session_auth_hash() == expected.get_session_auth_hash()  # the session stays valid

    with django_assert_num_queries(1):
        platform = user_with_clinic(superuser.pk)
    with django_assert_num_queries(0):
        assert platform.clinic is None
    assert _fields(platform) == _fields(User.objects.get(pk=superuser.pk))


def test_an_unknown_or_inactive_user_is_nobody(doctor_a):
    assert ClinicModelBackend().get_user(doctor_a.pk + 1000) is None
    User.objects.filter(pk=doctor_a.pk).update(is_active=False)
    assert ClinicModelBackend().get_user(doctor_a.pk) is None


def test_the_audit_row_is_stored_as_the_orm_would_store_it(doctor_a, clinic_a):
    token = audit.set_request_context(audit.RequestContext(ip_address="2001:db8::1", request_id="req-1"))
    try:
        event = audit_record(
            actor=doctor_a, action="patient.view", target=clinic_a, patient_id=7,
            detail={"note": "naïve, 5 µmol/L", "ids": [1, 2]},
        )  # fmt: skip
    finally:
        audit.reset_request_context(token)

    stored = AuditEvent.objects.get(pk=event.pk)
    assert not event._state.adding
    assert _fields(stored) == _fields(event)
    assert compute_hash(stored) == stored.hash
    assert audit_first_break() is None


@override_settings(ROOT_URLCONF="bench.urls")
def test_the_audited_floor_reads_the_user_and_writes_one_audit_row(client, doctor_a):
    client.force_login(doctor_a)
    client.get("/bench/audited/")  # the session's activity stamp is written by the first request

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/bench/audited/").status_code == 200

    statements = [query["sql"] for query in queries.captured_queries]
    session = [sql for sql in statements if "django_session" in sql]
    assert len(session) == session_read_queries()  # none on Redis, and never a write of an unchanged session
    user = [sql for sql in statements if 'FROM "clinic_user"' in sql]
    assert len(user) == 1
    assert "clinic_clinic" in user[0]  # the clinic with the user
    writes = [sql.split(" ", 1)[0] for sql in statements if sql not in session and sql not in user]
    if connection.vendor == "postgresql":  # the chain's lock and head, then the row; a transaction unless the test's
        expected = ["SELECT", "INSERT"] if connection.in_atomic_block else ["BEGIN", "SELECT", "INSERT", "COMMIT"]
        assert writes == expected
    else:
        assert [sql for sql in writes if sql in ("SELECT", "INSERT")] == ["SELECT", "INSERT"]
    assert AuditEvent.objects.filter(action="bench.audited.view").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_audited_floor_on_postgres(doctor_a, client):
    test_the_audited_floor_reads_the_user_and_writes_one_audit_row(client, doctor_a)
