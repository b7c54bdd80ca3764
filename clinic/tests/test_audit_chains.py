"""A chain per clinic, the rows written before it still verifiable, and a verification that reads only what the
checkpoint has not seen (clinic.audit)."""

import hashlib
import hmac
import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.audit import (
    GENESIS_HASH,
    ChainHead,
    Checkpoint,
    CheckpointInvalid,
    HashVersion,
    _checkpoint_write,
    _signature,
    audit_checkpoint,
    audit_record,
    audit_verify,
    checkpoint_path,
    checkpoint_read,
    compute_hash,
    hashed_content,
)
from clinic.models import AuditEvent, AuditOutcome
from clinic.testing import audit_tamper


def _old_rows(actor, count: int, version: int = HashVersion.KEYED) -> list[AuditEvent]:
    """Rows as the writer before the per-clinic chains left them: one chain across all clinics, in id order."""
    rows = []
    for n in range(count):
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        event = AuditEvent(time=timezone.now(), actor=actor, actor_username=actor.username, role=actor.role,
                           clinic_id=actor.clinic_id, action="patient.view", patient_id=n, outcome="success",
                           detail={}, prev_hash=previous, hash_version=version)  # fmt: skip
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        rows.append(event)
    return rows


def _rows(actor, count: int) -> list[AuditEvent]:
    return [audit_record(actor=actor, action="patient.view", patient_id=n) for n in range(count)]


def _breaks(**options) -> list[tuple[int, str]]:
    return [(b.event_id, b.reason) for b in audit_verify(**options).breaks]


def test_each_clinic_and_the_platform_have_a_chain_of_their_own(doctor_a, doctor_b):
    a1 = audit_record(actor=doctor_a, action="patient.view")
    b1 = audit_record(actor=doctor_b, action="patient.view")
    platform = audit_record(actor=None, action="audit.verify")
    a2 = audit_record(actor=doctor_a, action="patient.view")
    b2 = audit_record(actor=doctor_b, action="patient.view")

    assert (a1.prev_hash, b1.prev_hash, platform.prev_hash) == (GENESIS_HASH, GENESIS_HASH, GENESIS_HASH)
    assert (a2.prev_hash, b2.prev_hash) == (a1.hash, b1.hash)
    result = audit_verify()
    assert result.intact
    assert set(result.chains) == {f"clinic:{doctor_a.clinic_id}", f"clinic:{doctor_b.clinic_id}", "platform"}


def test_rows_of_the_one_chain_before_stay_verifiable_beside_the_clinic_chains(doctor_a, doctor_b):
    legacy = _old_rows(doctor_a, 2, HashVersion.LEGACY)
    keyed = _old_rows(doctor_b, 2, HashVersion.KEYED)
    new = _rows(doctor_a, 2) + _rows(doctor_b, 2)

    assert keyed[0].prev_hash == legacy[-1].hash  # across clinics: the one chain of before
    assert new[0].prev_hash == GENESIS_HASH
    assert audit_verify().intact
    call_command("audit_verify", "--checkpoint")
    assert checkpoint_read().chains["global"] == ChainHead(last_id=keyed[-1].pk, hash=keyed[-1].hash, count=4)
    assert audit_verify(since_checkpoint=True).intact
    assert audit_verify().intact


@pytest.mark.parametrize("old", [True, False], ids=["old row", "clinic chain row"])
def test_an_edited_row_is_found_in_the_old_chain_and_in_a_clinic_chain(doctor_a, doctor_b, old):
    before = _old_rows(doctor_a, 3)
    after = _rows(doctor_a, 3) + _rows(doctor_b, 1)
    target = (before if old else after)[1]

    audit_tamper("UPDATE clinic_auditevent SET patient_id = 99 WHERE id = %s", [target.pk])

    assert _breaks()[0] == (target.pk, "content does not match its hash (the row was altered)")


def test_a_row_deleted_from_a_clinic_chain_breaks_the_link_after_it(doctor_a, doctor_b):
    a = _rows(doctor_a, 3)
    _rows(doctor_b, 3)

    audit_tamper("DELETE FROM clinic_auditevent WHERE id = %s", [a[1].pk])

    assert _breaks() == [(a[2].pk, "previous-hash link broken (a row before it was removed or altered)")]


@pytest.mark.reliability(23, "Two rows of a clinic's chain swapped behind the trigger's back: found")
def test_two_rows_of_a_clinic_swapped_are_found(doctor_a, doctor_b):
    a = _rows(doctor_a, 3)
    _rows(doctor_b, 2)

    for old_id, new_id in ((a[0].pk, 1_000_000), (a[1].pk, a[0].pk), (1_000_000, a[1].pk)):
        audit_tamper("UPDATE clinic_auditevent SET id = %s WHERE id = %s", [new_id, old_id])

    assert [event_id for event_id, _ in _breaks()] == [a[0].pk, a[1].pk, a[2].pk]


def test_a_row_moved_to_another_clinics_chain_is_found(doctor_a, doctor_b):
    a = _rows(doctor_a, 2)
    _rows(doctor_b, 2)

    audit_tamper("UPDATE clinic_auditevent SET clinic_id = %s WHERE id = %s", [doctor_b.clinic_id, a[1].pk])

    assert a[1].pk in [event_id for event_id, _ in _breaks()]


@pytest.mark.parametrize("version", [HashVersion.CLINIC_CHAIN, HashVersion.LEGACY])
def test_a_row_inserted_into_a_clinic_chain_without_the_key_is_found(doctor_a, version):
    a = _rows(doctor_a, 2)
    call_command("audit_verify", "--checkpoint")
    forged = AuditEvent(time=timezone.now(), clinic_id=doctor_a.clinic_id, action="patient.view", detail={},
                        prev_hash=a[-1].hash, hash_version=version)  # fmt: skip
    forged.hash = hashlib.sha256((forged.prev_hash + hashed_content(forged)).encode()).hexdigest()
    forged.save(force_insert=True)

    assert [event_id for event_id, _ in _breaks(since_checkpoint=True)] == [forged.pk]
    assert [event_id for event_id, _ in _breaks()] == [forged.pk]


# --- incremental verification from the checkpoint ----------------------------------------------------------------


def _verification_cost(doctor_a, doctor_b, before: int, new: int) -> tuple[int, int]:
    """(rows checked, queries) of the check after `before` rows checkpointed and `new` rows written since."""
    _rows(doctor_a, before // 2)
    _rows(doctor_b, before - before // 2)
    audit_checkpoint()
    _rows(doctor_a, new)
    with CaptureQueriesContext(connection) as queries:
        result = audit_verify(since_checkpoint=True)
    assert result.intact
    assert not result.full
    return result.checked, len(queries)


def test_the_check_since_the_checkpoint_reads_the_new_rows_only(doctor_a, doctor_b):
    small = _verification_cost(doctor_a, doctor_b, before=4, new=3)
    audit_tamper("DELETE FROM clinic_auditevent", [])
    checkpoint_path().unlink()

    large = _verification_cost(doctor_a, doctor_b, before=60, new=3)

    assert small[0] == large[0] == 3  # the 3 new rows, whatever came before
    assert small[1] == large[1]  # and as many queries


def test_the_checkpoint_counts_each_chain_as_it_advances(doctor_a, doctor_b):
    _rows(doctor_a, 2)
    audit_checkpoint()
    a = _rows(doctor_a, 3)
    b = _rows(doctor_b, 1)

    result = audit_checkpoint()

    assert result.checked == 4
    chains = checkpoint_read().chains
    assert chains[f"clinic:{doctor_a.clinic_id}"] == ChainHead(last_id=a[-1].pk, hash=a[-1].hash, count=5)
    assert chains[f"clinic:{doctor_b.clinic_id}"] == ChainHead(last_id=b[-1].pk, hash=b[-1].hash, count=1)
    assert checkpoint_read().top_id == b[-1].pk


def test_a_row_committed_after_the_checkpoint_below_its_top_is_still_checked(doctor_a, doctor_b):
    """Writers of two clinics commit in any order: a row of clinic A may get its id before a row of clinic B and
    commit after the checkpoint read B's. The check after the checkpoint reads it, and the chain goes on from it."""
    a1 = audit_record(actor=doctor_a, action="patient.view")
    b1 = audit_record(actor=doctor_b, action="patient.view")
    a2 = audit_record(actor=doctor_a, action="patient.view")  # as if uncommitted when the checkpoint read
    b2 = audit_record(actor=doctor_b, action="patient.view")
    heads = {
        f"clinic:{doctor_a.clinic_id}": ChainHead(last_id=a1.pk, hash=a1.hash, count=1),
        f"clinic:{doctor_b.clinic_id}": ChainHead(last_id=b2.pk, hash=b2.hash, count=2),
    }
    _checkpoint_write(Checkpoint(chains=heads, top_id=b2.pk, legacy_until=0, written_at="then"))
    a3 = audit_record(actor=doctor_a, action="patient.view")

    result = audit_verify(since_checkpoint=True)

    assert result.intact
    assert result.checked == 2  # a2 and a3
    assert result.chains[f"clinic:{doctor_a.clinic_id}"] == ChainHead(last_id=a3.pk, hash=a3.hash, count=3)
    assert b1.pk < a2.pk


@pytest.mark.reliability(23, "A row altered after the checkpoint: the check since it finds it")
def test_a_row_altered_after_the_checkpoint_is_found_by_the_check_since_it(doctor_a):
    _rows(doctor_a, 3)
    call_command("audit_verify", "--checkpoint")
    new = _rows(doctor_a, 3)

    audit_tamper("UPDATE clinic_auditevent SET action = 'nothing.happened' WHERE id = %s", [new[1].pk])

    with pytest.raises(CommandError, match=f"event {new[1].pk}: content does not match"):
        call_command("audit_verify", "--since-checkpoint")


@pytest.mark.reliability(23, "A row altered before the checkpoint: the full check finds it")
def test_a_row_altered_before_the_checkpoint_is_found_by_the_full_check(doctor_a):
    old = _rows(doctor_a, 4)
    call_command("audit_verify", "--checkpoint")
    _rows(doctor_a, 2)

    audit_tamper("UPDATE clinic_auditevent SET action = 'nothing.happened' WHERE id = %s", [old[1].pk])

    assert audit_verify(since_checkpoint=True).intact  # not read: verified when it was checkpointed
    with pytest.raises(CommandError, match=f"event {old[1].pk}: content does not match"):
        call_command("audit_verify")


def test_the_head_of_a_chain_at_the_checkpoint_is_checked_by_the_check_since_it(doctor_a):
    old = _rows(doctor_a, 3)
    call_command("audit_verify", "--checkpoint")

    audit_tamper("UPDATE clinic_auditevent SET patient_id = 7 WHERE id = %s", [old[-1].pk])

    result = audit_verify(since_checkpoint=True)
    assert result.problems == [
        f"event {old[-1].pk} no longer has the hash the checkpoint of {result.checkpoint.written_at} recorded: it was "
        "rewritten"
    ]


@pytest.mark.reliability(23, "A checkpoint forged to move a chain's head back: its signature gives it away")
def test_a_forged_checkpoint_is_refused(doctor_a):
    old = _rows(doctor_a, 4)
    call_command("audit_verify", "--checkpoint")
    data = json.loads(checkpoint_path().read_text())
    data["chains"][f"clinic:{doctor_a.clinic_id}"].update(last_id=old[1].pk, hash=old[1].hash, count=2)
    checkpoint_path().write_text(json.dumps(data))

    with pytest.raises(CheckpointInvalid, match="does not carry a valid signature"):
        audit_verify(since_checkpoint=True)
    with pytest.raises(CommandError, match="does not carry a valid signature"):
        call_command("audit_verify", "--since-checkpoint")


def test_a_checkpoint_written_before_the_clinic_chains_is_read_and_carried_on(doctor_a):
    old = _old_rows(doctor_a, 3)
    fields = {"last_id": old[-1].pk, "hash": old[-1].hash, "count": 3, "legacy_until": 0, "written_at": "before"}
    checkpoint_path().write_text(json.dumps({**fields, "signature": _signature(fields)}))
    new = _rows(doctor_a, 2)

    assert audit_verify().intact
    assert audit_verify(since_checkpoint=True).checked == 2
    audit_checkpoint()

    chains = checkpoint_read().chains
    assert chains["global"] == ChainHead(last_id=old[-1].pk, hash=old[-1].hash, count=3)
    assert chains[f"clinic:{doctor_a.clinic_id}"] == ChainHead(last_id=new[-1].pk, hash=new[-1].hash, count=2)
    assert hmac.compare_digest(json.loads(checkpoint_path().read_text())["signature"], _signature(
        {key: value for key, value in json.loads(checkpoint_path().read_text()).items() if key != "signature"}
    ))  # fmt: skip


def test_the_nightly_check_reads_from_the_checkpoint_and_a_full_one_stays_available(doctor_a):
    from clinic.tasks import verify_audit_chain

    _rows(doctor_a, 5)
    audit_checkpoint()
    _rows(doctor_a, 2)

    nightly = verify_audit_chain.delay().get()
    full = verify_audit_chain.delay(full=True).get()

    assert (nightly["full"], nightly["checked"]) == (False, 2)
    assert (full["full"], full["checked"]) == (True, 8)  # every row, the nightly one's own row included
    assert AuditEvent.objects.filter(action="audit.verify", outcome=AuditOutcome.SUCCESS).count() == 2


# --- PostgreSQL: a lock per chain ----------------------------------------------------------------------------------


def _write_in_another_connection(actor) -> str:
    """Write one audit row from a connection of its own that waits at most a second for a lock: "written", or the
    error that stopped it."""
    outcome = []

    def write() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
                audit_record(actor=actor, action="patient.view")
            outcome.append("written")
        except DatabaseError as error:
            outcome.append(str(error).splitlines()[0])
        finally:
            connections.close_all()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    return outcome[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_a_writer_waits_only_for_writers_of_its_own_clinic(doctor_a, doctor_b):
    with transaction.atomic():
        audit_record(actor=doctor_a, action="patient.view")  # holds clinic A's chain until the commit

        other_clinic = _write_in_another_connection(doctor_b)
        same_clinic = _write_in_another_connection(doctor_a)
        platform = _write_in_another_connection(None)

    assert other_clinic == "written"
    assert platform == "written"
    assert "lock timeout" in same_clinic
    assert audit_verify().intact


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(14, "Four connections of two clinics appending at once: one unbroken chain each")
def test_postgres_writers_of_several_clinics_at_once_extend_one_unforked_chain_each(doctor_a, doctor_b):
    start = threading.Barrier(4)
    errors = []

    def write_rows(actor, writer: int) -> None:
        try:
            start.wait()
            for n in range(25):
                audit_record(actor=actor, action="patient.view", patient_id=writer * 100 + n)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connections.close_all()

    actors = [doctor_a, doctor_a, doctor_b, doctor_b]
    threads = [threading.Thread(target=write_rows, args=(actor, n)) for n, actor in enumerate(actors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for clinic_id in (doctor_a.clinic_id, doctor_b.clinic_id):
        links = list(AuditEvent.objects.filter(clinic_id=clinic_id).values_list("prev_hash", flat=True))
        assert len(links) == len(set(links)) == 50  # no two rows on the same link: no fork
    result = audit_verify()
    assert result.intact
    assert result.checked == 100
