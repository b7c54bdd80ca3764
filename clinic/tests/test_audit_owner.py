"""The audit table's owner cannot rewrite the trail unnoticed: what they can do behind the triggers' back (change,
delete, empty, re-hash without the key) is each found by `audit_verify`, keyed hashes and the checkpoint kept
outside the database."""

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from clinic.audit import (
    GENESIS_HASH,
    ChainHead,
    HashVersion,
    audit_record,
    audit_verify,
    checkpoint_path,
    checkpoint_read,
    hashed_content,
)
from clinic.models import AuditEvent, AuditOutcome
from clinic.services import audit_checkpoint_and_record
from clinic.testing import audit_tamper


def _rehash_without_the_key(*, start_id: int, version: int) -> None:
    """Chain every row from `start_id` on again with plain SHA-256: all an owner without AUDIT_HMAC_KEY can do."""
    previous = AuditEvent.objects.filter(id__lt=start_id).order_by("-id").values_list("hash", flat=True).first()
    previous = previous or GENESIS_HASH
    for event in AuditEvent.objects.filter(id__gte=start_id).order_by("id"):
        digest = hashlib.sha256((previous + hashed_content(event)).encode()).hexdigest()
        audit_tamper(
            "UPDATE clinic_auditevent SET prev_hash = %s, hash = %s, hash_version = %s WHERE id = %s",
            [previous, digest, version, event.pk],
        )
        previous = digest


def _rows(actor, count: int) -> list[AuditEvent]:
    return [audit_record(actor=actor, action="patient.view", patient_id=n) for n in range(count)]


def _verify_fails(match: str) -> str:
    with pytest.raises(CommandError, match=match) as excinfo:
        call_command("audit_verify")
    return str(excinfo.value)


def test_new_rows_are_keyed_and_verify_with_the_key_only(doctor_a, settings):
    event = audit_record(actor=doctor_a, action="patient.view", patient_id=1)

    assert event.hash_version == HashVersion.CLINIC_CHAIN
    assert event.hash != hashlib.sha256((event.prev_hash + hashed_content(event)).encode()).hexdigest()
    assert audit_verify().intact

    settings.AUDIT_HMAC_KEY = "another-key-than-the-one-the-rows-were-written-with"
    assert audit_verify().breaks[0].event_id == event.pk


@pytest.mark.parametrize("version", [HashVersion.KEYED, HashVersion.LEGACY])
@pytest.mark.reliability(23, "A row relabelled and the chain re-hashed with plain SHA-256 (as keyed, or as legacy)")
def test_a_row_relabelled_and_rehashed_with_plain_sha256_is_found(doctor_a, version):
    events = _rows(doctor_a, 4)
    audit_tamper("UPDATE clinic_auditevent SET action = 'nothing.happened' WHERE id = %s", [events[1].pk])

    _rehash_without_the_key(start_id=events[1].pk, version=version)

    message = _verify_fails(f"event {events[1].pk}")
    assert "re-hashed" in message if version == HashVersion.LEGACY else "content does not match" in message


@pytest.mark.reliability(23, "The whole chain re-hashed as legacy rows: the checkpoint's head no longer matches")
def test_the_whole_chain_rehashed_without_the_key_is_found_against_the_checkpoint(doctor_a):
    events = _rows(doctor_a, 3)
    call_command("audit_verify", "--checkpoint")
    audit_tamper("UPDATE clinic_auditevent SET patient_id = 99 WHERE id = %s", [events[0].pk])

    _rehash_without_the_key(start_id=events[0].pk, version=HashVersion.LEGACY)

    message = _verify_fails("does not match its checkpoint")
    assert f"event {events[-1].pk} no longer has the hash" in message
    assert f"event {events[0].pk}" in message  # and the first legacy row above the checkpoint's legacy_until


@pytest.mark.reliability(23, "Rows deleted from the end of the chain: shorter than the checkpoint, found")
def test_rows_cut_off_the_end_of_the_chain_are_found_against_the_checkpoint(doctor_a):
    events = _rows(doctor_a, 5)
    call_command("audit_verify", "--checkpoint")

    audit_tamper("DELETE FROM clinic_auditevent WHERE id >= %s", [events[3].pk])

    message = _verify_fails("cut short")
    assert f"event {events[4].pk}, the head of clinic {doctor_a.clinic_id}'s chain" in message
    assert f"ends at event {events[2].pk}" in message


@pytest.mark.reliability(23, "The table emptied (TRUNCATE behind the trigger) and new rows written: found")
def test_an_emptied_table_is_found_even_once_new_rows_arrive(doctor_a):
    _rows(doctor_a, 3)
    call_command("audit_verify", "--checkpoint")
    audit_tamper("DELETE FROM clinic_auditevent", [])  # what TRUNCATE with the trigger disabled leaves

    _verify_fails("holds no events")
    _rows(doctor_a, 2)  # the trail fills again: still not "intact"
    _verify_fails("cut short")


@pytest.mark.reliability(23, "A middle row deleted: its link breaks, the id gap and the checkpoint's count show it")
def test_a_middle_row_deleted_is_found_with_its_id_gap(doctor_a, capsys):
    events = _rows(doctor_a, 5)
    call_command("audit_verify", "--checkpoint")

    audit_tamper("DELETE FROM clinic_auditevent WHERE id = %s", [events[2].pk])

    message = _verify_fails(f"event {events[3].pk}: previous-hash link broken")
    assert f"4 events of clinic {doctor_a.clinic_id}'s chain up to event {events[4].pk} where the checkpoint" in message
    assert f"Event ids missing: {events[2].pk}." in capsys.readouterr().out


def test_an_id_gap_alone_is_reported_but_not_a_failure(doctor_a, capsys):
    """A rolled-back change leaves an id unused; the chain is still whole."""
    first = audit_record(actor=doctor_a, action="patient.view")
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012  (the rollback is the point)
        audit_record(actor=doctor_a, action="patient.view")
        raise RuntimeError("the change failed")
    audit_record(actor=doctor_a, action="patient.view")

    call_command("audit_verify")

    out = capsys.readouterr().out
    assert "Audit chain intact" in out
    if connection.vendor == "postgresql":  # SQLite hands the rolled-back id out again
        assert f"Event ids missing: {first.pk + 1}." in out


@pytest.mark.reliability(23, "The checkpoint file edited to match a shortened chain: its signature gives it away")
def test_an_edited_checkpoint_is_refused(doctor_a):
    _rows(doctor_a, 3)
    call_command("audit_verify", "--checkpoint")
    data = json.loads(checkpoint_path().read_text())
    data["count"] = 2
    checkpoint_path().write_text(json.dumps(data))

    _verify_fails("does not carry a valid signature")


def test_rows_written_before_the_key_stay_verifiable_and_the_checkpoint_fixes_where_they_end(doctor_a):
    old = _rows(doctor_a, 3)
    _rehash_without_the_key(start_id=old[0].pk, version=HashVersion.LEGACY)  # as migration 0006 left them
    old_head = AuditEvent.objects.get(pk=old[-1].pk).hash
    new = _rows(doctor_a, 2)

    call_command("audit_verify", "--checkpoint")

    checkpoint = checkpoint_read()
    assert (checkpoint.legacy_until, checkpoint.top_id) == (old[-1].pk, new[-1].pk)
    assert checkpoint.chains == {
        "global": ChainHead(last_id=old[-1].pk, hash=old_head, count=3),
        f"clinic:{doctor_a.clinic_id}": ChainHead(last_id=new[-1].pk, hash=new[-1].hash, count=2),
    }
    assert audit_verify().intact


def test_the_scheduled_checkpoint_advances_with_the_chain_and_keeps_the_last_good_one_when_it_breaks(doctor_a):
    _rows(doctor_a, 2)
    assert audit_checkpoint_and_record() == {"checkpointed": True}
    events = _rows(doctor_a, 3)
    assert audit_checkpoint_and_record() == {"checkpointed": True}
    chain = f"clinic:{doctor_a.clinic_id}"
    assert checkpoint_read().chains[chain] == ChainHead(last_id=events[-1].pk, hash=events[-1].hash, count=5)

    audit_tamper("UPDATE clinic_auditevent SET action = 'nothing.happened' WHERE id = %s", [events[-1].pk])
    result = audit_checkpoint_and_record()

    assert result["checkpointed"] is False
    assert checkpoint_read().chains[chain].last_id == events[-1].pk  # the evidence is kept, not overwritten
    refusal = AuditEvent.objects.get(action="audit.checkpoint")
    assert refusal.outcome == AuditOutcome.FAILURE


def test_the_nightly_verification_fails_on_a_chain_cut_short(doctor_a):
    from clinic.tasks import verify_audit_chain

    events = _rows(doctor_a, 3)
    call_command("audit_verify", "--checkpoint")
    audit_tamper("DELETE FROM clinic_auditevent WHERE id = %s", [events[-1].pk])

    verify_audit_chain.delay()

    event = AuditEvent.objects.get(action="audit.verify")
    assert event.outcome == AuditOutcome.FAILURE
    assert "cut short" in event.detail["checkpoint_problems"][0]


# --- PostgreSQL: TRUNCATE and the application's role ---------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # committed rows: TRUNCATE also refuses a table with pending FK checks
@pytest.mark.reliability(23, "TRUNCATE of the audit table: refused by a statement trigger")
def test_postgres_refuses_truncate_of_the_audit_table(doctor_a):
    audit_record(actor=doctor_a, action="patient.view")

    def truncate_as_any_other_session():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL clinic.audit_truncate = 'refused'")  # every session's setting but the tests'
            cursor.execute("TRUNCATE clinic_auditevent CASCADE")

    with pytest.raises(DatabaseError, match="TRUNCATE refused"):
        truncate_as_any_other_session()

    assert AuditEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.reliability(23, "The application's role (INSERT, SELECT): writes rows, cannot change or empty them")
def test_postgres_the_application_role_appends_but_cannot_update_delete_or_truncate(doctor_a):
    """The role split of docker-compose (docker/postgres/, `db_grant_app_role`), made in the test's transaction."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("CREATE ROLE clinic_app_in_test NOLOGIN")
        call_command("db_grant_app_role", "clinic_app_in_test", stdout=None)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE clinic_app_in_test")
        event = audit_record(actor=doctor_a, action="patient.view")
        doctor_a.first_name = "Renamed"
        doctor_a.save(update_fields=["first_name"])  # every other table: read and written as before
        for statement in (
            "UPDATE clinic_auditevent SET action = 'x'",
            "DELETE FROM clinic_auditevent",
            "TRUNCATE clinic_auditevent",
            "ALTER TABLE clinic_auditevent DISABLE TRIGGER ALL",
        ):
            with (
                pytest.raises(DatabaseError, match="permission denied|must be owner"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement)
        assert AuditEvent.objects.filter(pk=event.pk).exists()
        transaction.set_rollback(True)
