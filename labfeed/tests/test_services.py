"""Receiving messages: what is stored, held, listed or refused, and how each is acknowledged."""

import datetime

import pytest

from clinic.models import AuditEvent, AuditOutcome
from labfeed import hl7v2
from labfeed.models import HL7Message, LabCodeMap, UnmatchedResult
from labfeed.services import hl7_message_receive
from labfeed.tests.factories import obx, oru, potassium, sodium
from patients.catalog import catalog
from patients.models import Observation, ObservationSource, ObservationStatus

pytestmark = pytest.mark.django_db


def receive(text):
    receipt = hl7_message_receive(raw=text)
    assert hl7v2.ack_code_of(receipt.ack) == receipt.code
    return receipt


def stored(patient, code="potassium"):
    return list(Observation.all_objects.filter(patient=patient, analyte_id=catalog().ids[code]).order_by("id"))


def test_a_final_result_is_stored_flagged_logged_audited_and_acknowledged_aa(connection, patient, taken):
    receipt = receive(oru(potassium("5.6", flag="H"), sodium("140"), control_id="M1"))

    assert receipt.code == "AA"
    [k] = Observation.objects.filter(patient=patient, analyte_id=catalog().ids["potassium"])
    assert (k.value, k.entered_unit, k.effective_at, k.interpretation) == (5.6, "mmol/L", taken, "H")
    assert k.source == ObservationSource.HL7
    assert k.status == ObservationStatus.FINAL
    log = HL7Message.objects.get(control_id="M1")
    assert (log.connection, log.ack_code, log.outcome, log.results, log.created) == (connection, "AA", "stored", 2, 2)
    audit = AuditEvent.objects.get(action="hl7.message")
    assert (audit.clinic_id, audit.patient_id, audit.actor_username) == (
        patient.clinic_id,
        patient.pk,
        "hl7:CENTRAL LAB",
    )


def test_a_specimen_time_without_an_offset_is_the_clinics_local_time_not_the_servers(
    connection, patient, clinic_a, settings
):
    settings.TIME_ZONE = "UTC"
    clinic_a.time_zone = "Australia/Brisbane"  # UTC+10, no daylight saving
    clinic_a.save(update_fields=["time_zone"])

    assert receive(oru(potassium("4.1"))).code == "AA"

    [k] = stored(patient)
    assert k.effective_at == datetime.datetime(2026, 1, 14, 22, 30, tzinfo=datetime.UTC)  # 08:30 in Brisbane


def test_a_v23_message_is_stored_like_a_v251_one(connection, patient):
    assert receive(oru(potassium("4.1"), version="2.3")).code == "AA"

    assert [o.value for o in stored(patient)] == [4.1]


def test_a_message_from_an_unknown_sender_is_rejected_and_writes_nothing_but_its_log(connection, patient):
    receipt = receive(oru(potassium(), facility="OTHER LAB", control_id="X1"))

    assert receipt.code == "AR"
    assert "No active lab connection for sending facility OTHER LAB" in receipt.ack
    assert not Observation.all_objects.exists()
    log = HL7Message.objects.get(control_id="X1")
    assert (log.connection, log.outcome) == (None, "refused")
    assert AuditEvent.objects.get(action="hl7.message").outcome == AuditOutcome.FAILURE


def test_an_inactive_connection_is_an_unknown_sender(connection, patient):
    connection.active = False
    connection.save()

    assert receive(oru(potassium())).code == "AR"
    assert not Observation.all_objects.exists()


def test_an_application_specific_connection_takes_only_that_application(connection, patient):
    connection.sending_application = "OTHER-LIS"
    connection.save()

    assert receive(oru(potassium())).code == "AR"  # the builder's MSH-3 is LIS


@pytest.mark.hazard(
    "H2", "An HL7 result in a unit the catalog does not accept refuses the message (AE), naming the accepted units"
)
def test_a_wrong_unit_refuses_the_whole_message_ae_and_writes_nothing(connection, patient):
    receipt = receive(oru(sodium("140", n=1), potassium("4.2", unit="mg/dL", n=2), control_id="U1"))

    assert receipt.code == "AE"
    assert "Potassium cannot be entered in mg/dL; accepted units: mmol/L, meq/L" in receipt.error
    assert "OBX 2" in receipt.error
    assert not Observation.all_objects.exists()  # the valid sodium of the same message neither
    assert HL7Message.objects.get(control_id="U1").ack_code == "AE"


@pytest.mark.hazard("H11", "An impossible value in an HL7 message refuses the whole message; nothing is written")
def test_an_impossible_value_refuses_the_message_ae(connection, patient):
    receipt = receive(oru(potassium("42")))

    assert receipt.code == "AE"
    assert "outside the plausible range" in receipt.error
    assert not Observation.all_objects.exists()


def test_a_malformed_message_is_answered_ar_even_when_its_header_cannot_be_read(db):
    receipt = receive("this is not HL7 at all")

    assert receipt.code == "AR"
    assert "does not start with an MSH segment" in receipt.error
    assert HL7Message.objects.get().outcome == "refused"


@pytest.mark.hazard("H11", "A truncated HL7 message is rejected (AR) with the reason and nothing of it is written")
def test_a_truncated_message_writes_nothing_and_says_why(connection, patient):
    text = oru(sodium("140", n=1), potassium("4.2", n=2))
    receipt = receive(text[: text.rindex("|||F")])

    assert receipt.code == "AR"
    assert "OBX 2 has no result status" in receipt.error
    assert not Observation.all_objects.exists()


def test_a_resent_message_writes_nothing_twice_and_gets_the_same_ack_code(connection, patient):
    first = receive(oru(potassium("4.2"), control_id="R1"))
    again = receive(oru(potassium("4.2"), control_id="R1"))

    assert (first.code, again.code, again.resent) == ("AA", "AA", True)
    assert len(stored(patient)) == 1
    log = HL7Message.objects.get(control_id="R1")
    assert log.resent == 1
    assert AuditEvent.objects.filter(action="hl7.message").count() == 1


def test_a_resent_refused_message_is_refused_again_with_the_same_code(connection, patient):
    assert receive(oru(potassium("4.2", unit="g/L"), control_id="R2")).code == "AE"

    again = receive(oru(potassium("4.2", unit="g/L"), control_id="R2"))

    assert again.code == "AE"
    assert "accepted units" in again.error
    assert HL7Message.objects.filter(control_id="R2").count() == 1


def test_the_same_control_id_from_another_facility_is_another_message(connection, patient, clinic_a):
    connection.pk = None
    connection.sending_facility, connection.name = "SECOND LAB", "Second"
    connection.save()
    receive(oru(potassium("4.2"), control_id="SAME"))

    assert receive(oru(sodium("141"), control_id="SAME", facility="SECOND LAB")).resent is False
    assert HL7Message.objects.filter(control_id="SAME").count() == 2


# --- OBX-11 ---------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H13", "A preliminary HL7 result is stored as such and not read for care")
def test_a_preliminary_result_is_stored_as_preliminary_and_not_read_for_care(connection, patient):
    receive(oru(potassium("4.9", status="P")))

    [k] = stored(patient)
    assert k.status == ObservationStatus.PRELIMINARY
    assert not Observation.objects.filter(patient=patient).exists()  # what scores, rules and pages read


def test_a_final_after_a_preliminary_replaces_it_and_keeps_it_in_the_history(connection, patient):
    receive(oru(potassium("4.9", status="P"), control_id="P1"))
    receive(oru(potassium("5.0", status="F"), control_id="F1"))

    preliminary, final = stored(patient)
    assert (final.value, final.status) == (5.0, ObservationStatus.FINAL)
    assert (preliminary.status, preliminary.replaced_by) == (ObservationStatus.CORRECTED, final)
    assert "final result of the lab (HL7 message F1" in preliminary.amend_reason
    assert HL7Message.objects.get(control_id="F1").replaced == 1


def test_a_final_with_the_preliminary_value_makes_it_final(connection, patient):
    receive(oru(potassium("4.9", status="P"), control_id="P1"))
    receive(oru(potassium("4.9", status="F"), control_id="F1"))

    [k] = stored(patient)
    assert (k.value, k.status) == (4.9, ObservationStatus.FINAL)


@pytest.mark.hazard(
    "H13",
    "A lab's corrected result (OBX-11 C) replaces the final one through the staff's amend path, the old value kept",
)
def test_a_correction_amends_the_final_result_through_the_staff_path(connection, patient):
    receive(oru(potassium("4.2"), control_id="F1"))
    receive(oru(potassium("4.6", status="C"), control_id="C1"))

    old, new = stored(patient)
    assert (old.status, old.replaced_by, new.status, new.value) == (ObservationStatus.CORRECTED, new, "final", 4.6)
    assert old.amend_reason == "Corrected by the lab (HL7 message C1 from Central Lab)."
    assert new.source == ObservationSource.HL7
    audit = AuditEvent.objects.get(action="observation.correct")
    assert (audit.actor_username, audit.detail["old"]["value"], audit.detail["new"]["value"]) == (
        "hl7:CENTRAL LAB", 4.2, 4.6,
    )  # fmt: skip


def test_a_final_of_another_value_over_a_final_is_refused_ae(connection, patient):
    receive(oru(potassium("4.2"), control_id="F1"))

    receipt = receive(oru(potassium("4.6"), control_id="F2"))

    assert receipt.code == "AE"
    assert "send a change as a correction (OBX-11 C)" in receipt.error
    assert [o.value for o in stored(patient)] == [4.2]


@pytest.mark.hazard("H13", "A lab's cancelled result (OBX-11 X) is withdrawn as entered in error")
def test_a_cancellation_withdraws_the_result_as_entered_in_error(connection, patient):
    receive(oru(potassium("4.2"), control_id="F1"))
    receive(oru(potassium("", status="X"), control_id="X1"))

    [k] = stored(patient)
    assert k.status == ObservationStatus.ENTERED_IN_ERROR
    assert "Cancelled by the lab" in k.amend_reason
    assert AuditEvent.objects.filter(action="observation.entered_in_error").count() == 1


def test_a_cancellation_withdraws_a_preliminary_result(connection, patient):
    receive(oru(potassium("4.2", status="P"), control_id="P1"))
    receive(oru(potassium("", status="X"), control_id="X1"))

    assert [k.status for k in stored(patient)] == [ObservationStatus.ENTERED_IN_ERROR]


def test_a_cancellation_of_nothing_stored_stores_nothing_and_says_so(connection, patient):
    receipt = receive(oru(potassium("", status="X"), control_id="X1"))

    assert receipt.code == "AA"
    assert not stored(patient)
    assert "nothing to withdraw" in HL7Message.objects.get(control_id="X1").notes[0]["text"]


def test_a_withdrawn_value_sent_again_does_not_come_back(connection, patient):
    receive(oru(potassium("4.2"), control_id="F1"))
    receive(oru(potassium("", status="X"), control_id="X1"))
    receive(oru(potassium("4.2"), control_id="F2"))

    assert [k.status for k in stored(patient)] == [ObservationStatus.ENTERED_IN_ERROR]


# --- codes, values, flags -----------------------------------------------------------------------------------------


def test_an_unknown_code_and_a_non_numeric_result_are_listed_and_the_rest_stored(connection, patient):
    receipt = receive(oru(
        potassium("4.2", n=1),
        obx(2, "99999-9", "7", "mmol/L", text="Mystery"),
        obx(3, "COMMENT", "Haemolysed", "", system="L", value_type="ST"),
        obx(4, "2951-2", "<^120", "mmol/L", value_type="SN"),
        control_id="N1",
    ))  # fmt: skip

    assert receipt.code == "AA"
    assert len(stored(patient)) == 1
    log = HL7Message.objects.get(control_id="N1")
    assert (log.created, log.skipped) == (1, 3)
    kinds = {note["obx"]: note["kind"] for note in log.notes}
    assert kinds == {"OBX 2 (99999-9 Mystery)": "unknown_code", "OBX 3 (COMMENT)": "unknown_code",
                     "OBX 4 (2951-2)": "not_numeric"}  # fmt: skip


def test_a_lab_code_is_read_through_the_connections_code_map(connection, patient):
    LabCodeMap.objects.create(connection=connection, local_code="K", local_text="Kalium",
                              analyte_id=catalog().ids["potassium"])  # fmt: skip

    receive(oru(obx(1, "K", "4.3", "mmol/L", system="L", text="Kalium")))

    assert [o.value for o in stored(patient)] == [4.3]


@pytest.mark.hazard("H2", "A unit a lab spells its own way (x10E3/uL, mg/dl) is read as the catalog's unit")
def test_units_spelled_as_labs_write_them_are_understood_as_a_csv_import_understands_them(connection, patient):
    receipt = receive(oru(
        obx(1, "6690-2", "7.2", "x10E3/uL", text="WBC"),
        obx(2, "1558-6", "99", "mg/dl", text="Glucose fasting"),
        control_id="UN1",
    ))  # fmt: skip

    assert receipt.code == "AA"
    [wbc] = stored(patient, "wbc")
    assert (wbc.value, wbc.entered_value, wbc.entered_unit) == (7.2, 7.2, "10*3/uL")
    [glucose] = stored(patient, "glucose")
    assert (round(glucose.value, 1), glucose.entered_value, glucose.entered_unit) == (5.5, 99, "mg/dL")


def test_a_unit_the_analyte_is_not_measured_in_still_refuses_the_message(connection, patient):
    receipt = receive(oru(obx(1, "1558-6", "99", "mg", text="Glucose fasting"), control_id="UN2"))

    assert receipt.code == "AE"
    assert "accepted units: mmol/L, mg/dL" in receipt.error
    assert not stored(patient, "glucose")


VENOUS_POTASSIUM = "39789-3"  # Potassium [Moles/volume] in Venous blood: a LOINC code the catalog does not list


def test_a_loinc_code_the_catalog_lacks_is_read_through_the_lab_code_sent_beside_it(connection, patient):
    LabCodeMap.objects.create(connection=connection, local_code="K", local_text="Kalium",
                              analyte_id=catalog().ids["potassium"])  # fmt: skip

    receive(oru(obx(1, VENOUS_POTASSIUM, "4.3", "mmol/L", text="Potassium VenBld", alternate="K^Kalium^L")))

    assert [o.value for o in stored(patient)] == [4.3]


def test_the_alternate_loinc_code_is_read_when_the_first_is_not_in_the_catalog(connection, patient):
    receive(oru(obx(1, VENOUS_POTASSIUM, "4.3", "mmol/L", alternate="2823-3^Potassium SerPl^LN")))

    assert [o.value for o in stored(patient)] == [4.3]


def test_a_loinc_code_the_catalog_lacks_can_be_mapped_like_a_lab_code(connection, patient):
    LabCodeMap.objects.create(connection=connection, local_code=VENOUS_POTASSIUM,
                              analyte_id=catalog().ids["potassium"])  # fmt: skip

    receive(oru(obx(1, VENOUS_POTASSIUM, "4.3", "mmol/L", text="Potassium VenBld")))

    assert [o.value for o in stored(patient)] == [4.3]


def test_a_result_neither_code_of_which_is_known_is_listed_naming_both(connection, patient):
    receive(oru(obx(1, VENOUS_POTASSIUM, "4.3", "mmol/L", alternate="KV^Kalium venous^L"), control_id="U2"))

    assert not stored(patient)
    [note] = HL7Message.objects.get(control_id="U2").notes
    assert note["kind"] == "unknown_code"
    assert note["text"] == (f"Codes {VENOUS_POTASSIUM} (LN) and KV (L) are neither LOINC codes of the catalog nor "
                            f"mapped for {connection.name}: not stored.")  # fmt: skip


def test_a_code_mapped_for_another_connection_is_unknown_here(connection, patient, clinic_b):
    other = type(connection).objects.create(clinic=clinic_b, name="B lab", sending_facility="B LAB",
                                            assigning_authority="HILL")  # fmt: skip
    LabCodeMap.objects.create(connection=other, local_code="K", analyte_id=catalog().ids["potassium"])

    receive(oru(obx(1, "K", "4.3", "mmol/L", system="L"), control_id="K1"))

    assert not stored(patient)
    assert HL7Message.objects.get(control_id="K1").notes[0]["kind"] == "unknown_code"


@pytest.mark.hazard("H1", "A critical potassium arriving over HL7 is flagged HH and called out in the message log")
def test_a_critical_value_is_flagged_and_called_out_in_the_log(connection, patient):
    receive(oru(potassium("6.8", flag="HH"), control_id="CR1"))

    [k] = stored(patient)
    assert k.interpretation == "HH"
    log = HL7Message.objects.get(control_id="CR1")
    assert log.critical == 1
    assert {"kind": "critical", "obx": "OBX 1 (2823-3 Potassium)",
            "text": "Potassium 6.8 mmol/L (critically high)"} in log.notes  # fmt: skip


@pytest.mark.hazard(
    "H1", "A value the lab calls critical (OBX-8 HH, LL, AA) within our critical limits is stored critical"
)
@pytest.mark.parametrize(
    ("value", "lab_flag", "stored_flag"), [("6.1", "HH", "HH"), ("6.1", "AA", "HH"), ("2.9", "LL", "LL")]
)
def test_the_labs_critical_call_raises_our_high_or_low_to_critical(connection, patient, value, lab_flag, stored_flag):
    receive(oru(potassium(value, flag=lab_flag), control_id="LC1"))

    [k] = stored(patient)
    # The catalog's critical limits (2.8-6.2) alone give H or L: the red banner would be silent.
    assert k.interpretation == stored_flag
    log = HL7Message.objects.get(control_id="LC1")
    assert log.critical == 1
    notes = {note["kind"]: note["text"] for note in log.notes}
    assert notes["critical"].startswith(f"Potassium {value} mmol/L (critically")
    assert f"the lab flags {lab_flag}" in notes["flag_disagreement"]
    assert f"stored as {stored_flag}" in notes["flag_disagreement"]


def test_a_correction_the_lab_calls_critical_is_stored_critical(connection, patient):
    receive(oru(potassium("4.2"), control_id="F1"))
    receive(oru(potassium("6.1", status="C", flag="HH"), control_id="C1"))

    old, new = stored(patient)
    assert (old.status, new.value, new.interpretation) == (ObservationStatus.CORRECTED, 6.1, "HH")
    assert HL7Message.objects.get(control_id="C1").critical == 1


def test_a_labs_critical_call_against_our_direction_is_reported_not_followed(connection, patient):
    receive(oru(potassium("3.2", flag="HH"), control_id="LC2"))

    assert stored(patient)[0].interpretation == "L"
    [note] = HL7Message.objects.get(control_id="LC2").notes
    assert "the lab flags HH, this clinic's reference range gives L (stored)" in note["text"]


def test_our_flag_is_stored_and_a_lab_flag_that_disagrees_is_reported(connection, patient):
    receive(oru(potassium("5.3", flag="N"), control_id="D1"))

    assert stored(patient)[0].interpretation == "H"
    [note] = HL7Message.objects.get(control_id="D1").notes
    assert note["kind"] == "flag_disagreement"
    assert "the lab flags N, this clinic's reference range gives H" in note["text"]


def test_a_unit_the_catalog_converts_is_stored_in_the_canonical_unit(connection, patient):
    receive(oru(obx(1, "718-7", "139", "g/L", text="Hemoglobin")))

    [hb] = stored(patient, "hemoglobin")
    assert (hb.value, hb.entered_value, hb.entered_unit) == (pytest.approx(13.9), 139, "g/L")


# --- patients ---------------------------------------------------------------------------------------------------


def test_the_mrn_of_the_clinics_authority_matches_regardless_of_case(connection, patient):
    receive(oru(potassium(), mrn="rv1001", authority="riverside"))

    assert len(stored(patient)) == 1


@pytest.mark.hazard(
    "H3", "HL7 results for an MRN the clinic does not have are held on the worklist, never filed to a guess"
)
def test_an_unknown_patient_is_held_on_the_worklist_and_acknowledged_aa(connection, patient):
    receipt = receive(oru(potassium("4.2"), sodium("139"), mrn="RV9999", control_id="H1"))

    assert (receipt.code, receipt.outcome) == ("AA", "held")
    assert not Observation.all_objects.exists()
    held = UnmatchedResult.objects.get()
    assert (held.clinic_id, held.mrn, held.family_name, held.reason) == (
        patient.clinic_id, "RV9999", "Doe", "No patient with MRN RV9999 in this clinic.",
    )  # fmt: skip
    assert [r["analyte"] for r in held.results] == ["potassium", "sodium"]
    assert HL7Message.objects.get(control_id="H1").held == 2


def test_results_without_the_clinics_identifier_are_held(connection, patient):
    receive(oru(potassium(), authority="SOMEONE ELSE"))

    assert UnmatchedResult.objects.get().reason == "No PID-3 identifier of assigning authority RIVERSIDE."


@pytest.mark.hazard("H3", "An HL7 result whose birth date contradicts the MRN's patient is held for staff, not filed")
def test_an_mrn_whose_birth_date_contradicts_the_message_is_held_not_filed(connection, patient):
    receive(oru(potassium(), born="19900101"))

    assert not Observation.all_objects.exists()
    assert "born 1980-05-17, but the lab gives 1990-01-01" in UnmatchedResult.objects.get().reason


def test_nothing_is_acknowledged_aa_when_the_commit_fails(connection, patient, monkeypatch):
    from labfeed import listener, services

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "audit_record", broken)
    # The listener drops a connection that had an error, as it should in its own thread; here that connection is
    # the test's, inside the test's transaction, so it is kept for the assertions below.
    monkeypatch.setattr(listener, "close_old_connections", lambda: None)

    ack = listener._answer(oru(potassium()).encode())

    assert hl7v2.ack_code_of(ack) == "AE"
    assert "nothing was stored" in ack
    assert not Observation.all_objects.exists()
