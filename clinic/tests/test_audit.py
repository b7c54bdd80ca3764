import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from clinic.audit import (
    GENESIS_HASH,
    RequestContext,
    audit_first_break,
    audit_record,
    compute_hash,
    set_request_context,
)
from clinic.models import AuditEvent, AuditOutcome
from clinic.testing import audit_tamper


def test_each_row_links_to_the_previous_rows_hash(doctor_a):
    first = audit_record(actor=doctor_a, action="patient.view", patient_id=1)
    second = audit_record(actor=doctor_a, action="patient.view", patient_id=2)

    assert second.prev_hash == first.hash
    assert len(second.hash) == 64
    assert AuditEvent.objects.order_by("id").first().prev_hash == GENESIS_HASH


def test_a_row_records_actor_role_clinic_target_and_request_context(doctor_a, clinic_a):
    set_request_context(RequestContext(ip_address="10.1.2.3", request_id="req-42"))

    event = audit_record(actor=doctor_a, action="user.update", target=doctor_a, detail={"changed": ["email"]})

    event.refresh_from_db()
    assert (event.actor_username, event.role, event.clinic_id) == ("doctor_a", "doctor", clinic_a.pk)
    assert (event.object_type, event.object_id) == ("clinic.user", str(doctor_a.pk))
    assert (event.ip_address, event.request_id) == ("10.1.2.3", "req-42")
    assert event.detail == {"changed": ["email"]}
    assert event.time.utcoffset().total_seconds() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_appends_a_row_in_two_statements_hashed_as_verification_expects(doctor_a):
    doctor_a.username = "zoë_ångström"  # non-ASCII content hashes the same as it is stored
    audit_record(actor=doctor_a, action="patient.view", patient_id=1)

    with CaptureQueriesContext(connection) as queries:
        event = audit_record(actor=doctor_a, action="patient.view", patient_id=2, detail={"note": "naïve, 5 µmol/L"})

    statements = [query["sql"].split(" ", 1)[0] for query in queries]
    assert statements == ["BEGIN", "SELECT", "INSERT", "COMMIT"]  # the lock and the last hash, then the row
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.prev_hash, stored.hash) == (event.prev_hash, event.hash)
    assert compute_hash(stored) == stored.hash
    assert stored.detail == {"note": "naïve, 5 µmol/L"}
    assert stored.actor_username == "zoë_ångström"
    assert audit_first_break() is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(14, "Four connections appending audit rows at once: one unbroken chain, no fork")
def test_concurrent_writers_on_postgres_extend_one_chain(doctor_a):
    start = threading.Barrier(4)
    errors = []

    def write_rows(writer: int) -> None:
        try:
            start.wait()
            for n in range(25):
                audit_record(actor=doctor_a, action="patient.view", patient_id=writer * 100 + n)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write_rows, args=(writer,)) for writer in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    links = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(links) == 100
    assert len(set(links)) == 100
    assert audit_first_break() is None


@pytest.mark.django_db(transaction=True)
def test_the_audit_row_rolls_back_with_the_change_it_records(clinic_a, doctor_a):
    before = AuditEvent.objects.count()

    def change_that_fails():
        with transaction.atomic():
            audit_record(actor=doctor_a, action="patient.create")
            raise IntegrityError("the change failed")

    with pytest.raises(IntegrityError):
        change_that_fails()

    assert AuditEvent.objects.count() == before


def test_audit_verify_passes_on_an_intact_chain(doctor_a, capsys):
    for n in range(3):
        audit_record(actor=doctor_a, action="patient.view", patient_id=n)

    call_command("audit_verify")

    assert "Audit chain intact" in capsys.readouterr().out


@pytest.mark.reliability(14, "A row altered behind the trigger's back: `audit_verify` names it")
def test_audit_verify_reports_the_first_altered_row(doctor_a):
    events = [audit_record(actor=doctor_a, action="patient.view", patient_id=n) for n in range(4)]
    audit_tamper("UPDATE clinic_auditevent SET patient_id = 99 WHERE id = %s", [events[2].pk])

    with pytest.raises(CommandError, match=f"event {events[2].pk}: content does not match"):
        call_command("audit_verify")


@pytest.mark.reliability(14, "A row removed behind the trigger's back: the broken link is found")
def test_audit_verify_reports_a_removed_row(doctor_a):
    events = [audit_record(actor=doctor_a, action="patient.view", patient_id=n) for n in range(4)]
    audit_tamper("DELETE FROM clinic_auditevent WHERE id = %s", [events[1].pk])

    breakage = audit_first_break()

    assert breakage.event_id == events[2].pk
    assert "link broken" in breakage.reason


@pytest.mark.reliability(14, "`audit_verify` on a tampered chain exits non-zero")
def test_audit_verify_exits_non_zero_on_a_broken_chain(doctor_a, tmp_path):
    events = [audit_record(actor=doctor_a, action="patient.view", patient_id=n) for n in range(2)]
    audit_tamper("UPDATE clinic_auditevent SET action = 'nothing.happened' WHERE id = %s", [events[0].pk])

    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify")

    assert excinfo.value.returncode == 1


@pytest.mark.postgres
@pytest.mark.reliability(14, "UPDATE of an audit row through the application's connection: refused by the trigger")
def test_postgres_refuses_update_of_an_audit_row(doctor_a):
    event = audit_record(actor=doctor_a, action="patient.view")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="patient.nothing")


@pytest.mark.postgres
@pytest.mark.reliability(14, "DELETE of an audit row through the application's connection: refused by the trigger")
def test_postgres_refuses_delete_of_an_audit_row(doctor_a):
    event = audit_record(actor=doctor_a, action="patient.view")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM clinic_auditevent WHERE id = %s", [event.pk])

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_nightly_verification_records_its_outcome(doctor_a):
    from clinic.tasks import verify_audit_chain

    audit_record(actor=doctor_a, action="patient.view")
    verify_audit_chain.delay()

    event = AuditEvent.objects.get(action="audit.verify")
    assert event.outcome == AuditOutcome.SUCCESS
    assert event.detail["broken_at"] is None
