import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from clinic.models import AuditEvent
from patients.models import Condition, Observation, Sex, VerificationStatus
from patients.services import (
    ObservationInput,
    condition_record,
    condition_update,
    critical_results_acknowledge,
    observations_record,
    patient_create,
    patient_update,
)
from patients.tests.factories import PatientFactory

WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture
def patient(clinic_a):
    return PatientFactory(clinic=clinic_a, sex=Sex.MALE)


def test_staff_register_a_patient_in_their_own_clinic_and_it_is_audited(staff_a):
    patient = patient_create(
        by=staff_a, mrn="A-1", given_name="Ann", family_name="Lee", birth_date=datetime.date(1970, 1, 2), sex="female"
    )

    assert patient.clinic_id == staff_a.clinic_id
    assert AuditEvent.objects.filter(action="patient.create", patient_id=patient.pk, actor=staff_a).exists()


def test_an_mrn_is_unique_within_a_clinic_but_not_across_clinics(staff_a, doctor_b):
    fields = {
        "mrn": "A-1",
        "given_name": "A",
        "family_name": "B",
        "birth_date": datetime.date(1970, 1, 2),
        "sex": "male",
    }
    patient_create(by=staff_a, **fields)

    patient_create(by=doctor_b, **fields)
    with pytest.raises(ValidationError):
        patient_create(by=staff_a, **fields)


def test_a_patient_account_cannot_register_patients(patient_user_a):
    with pytest.raises(PermissionDenied):
        patient_create(
            by=patient_user_a,
            mrn="X",
            given_name="X",
            family_name="Y",
            birth_date=datetime.date(1990, 1, 1),
            sex="male",
        )


def test_updates_record_which_fields_changed(staff_a, patient):
    patient_update(patient=patient, by=staff_a, phone="+44 20 7946 0000", smoking="current")

    event = AuditEvent.objects.get(action="patient.update")
    assert event.detail["changed"] == ["phone", "smoking"]


@pytest.mark.hazard(
    "H2", "A glucose of 126 mg/dL is stored as 6.99 mmol/L, flagged H, and keeps the value and unit entered"
)
def test_a_value_in_mg_dl_is_stored_in_mmol_l_and_keeps_what_was_entered(staff_a, patient):
    [observation] = observations_record(
        patient=patient, by=staff_a, entries=[ObservationInput("glucose", 126, "mg/dL")], effective_at=WHEN
    )

    observation.refresh_from_db()
    assert observation.value == pytest.approx(6.99, abs=0.01)
    assert (observation.entered_value, observation.entered_unit) == (126, "mg/dL")
    assert observation.interpretation == "H"


def test_analytes_are_found_by_loinc_code_and_flagged_by_sex(staff_a, patient):
    [observation] = observations_record(
        patient=patient, by=staff_a, entries=[ObservationInput("718-7", 12.5, "g/dL")], effective_at=WHEN
    )

    assert observation.analyte.code == "hemoglobin"
    assert observation.interpretation == "L"  # low for this man; normal for a woman


@pytest.mark.hazard("H11", "A panel with one impossible haemoglobin saves none of its values and names the problem")
def test_one_impossible_value_in_a_panel_saves_nothing_and_names_the_problem(staff_a, patient):
    entries = [ObservationInput("glucose", 5.2, "mmol/L"), ObservationInput("hemoglobin", 180, "g/dL")]

    with pytest.raises(ValidationError) as excinfo:
        observations_record(patient=patient, by=staff_a, entries=entries, effective_at=WHEN)

    assert "Did you mean g/L?" in excinfo.value.message_dict["hemoglobin"][0]
    assert not Observation.objects.exists()
    assert not AuditEvent.objects.filter(action="observation.create").exists()


def test_entering_the_same_panel_twice_writes_nothing_new(staff_a, patient):
    entries = [ObservationInput("glucose", 5.2, "mmol/L"), ObservationInput("hdl", 1.4, "mmol/L")]
    observations_record(patient=patient, by=staff_a, entries=entries, effective_at=WHEN)

    again = observations_record(patient=patient, by=staff_a, entries=entries, effective_at=WHEN)

    assert again == []
    assert Observation.objects.count() == 2


@pytest.mark.parametrize("second", [(5.2, "mmol/L"), (94, "mg/dL")])
def test_one_analyte_given_twice_in_a_panel_is_refused_and_nothing_is_saved(staff_a, patient, second):
    entries = [ObservationInput("glucose", 5.2, "mmol/L"), ObservationInput("glucose", *second)]

    with pytest.raises(ValidationError) as excinfo:
        observations_record(patient=patient, by=staff_a, entries=entries, effective_at=WHEN)

    assert "twice" in excinfo.value.message_dict["glucose"][0]
    assert not Observation.objects.exists()


def test_results_cannot_be_dated_in_the_future_or_before_birth(staff_a, patient):
    entries = [ObservationInput("glucose", 5.2, "mmol/L")]

    with pytest.raises(ValidationError, match="future"):
        observations_record(
            patient=patient, by=staff_a, entries=entries, effective_at=timezone.now() + datetime.timedelta(days=1)
        )
    with pytest.raises(ValidationError, match="birth"):
        observations_record(
            patient=patient,
            by=staff_a,
            entries=entries,
            effective_at=datetime.datetime(1950, 1, 1, tzinfo=datetime.UTC),
        )


def test_results_for_a_patient_of_another_clinic_are_refused(doctor_b, patient):
    with pytest.raises(PermissionDenied):
        observations_record(
            patient=patient, by=doctor_b, entries=[ObservationInput("glucose", 5.0, "mmol/L")], effective_at=WHEN
        )


def test_staff_record_provisional_conditions_but_only_doctors_confirm(staff_a, doctor_a, patient):
    condition = condition_record(patient=patient, by=staff_a, code="e11.9", display="Type 2 diabetes")

    with pytest.raises(PermissionDenied):
        condition_update(condition=condition, by=staff_a, verification_status=VerificationStatus.CONFIRMED)
    condition_update(condition=condition, by=doctor_a, verification_status=VerificationStatus.CONFIRMED)

    condition.refresh_from_db()
    assert condition.code == "E11.9"
    assert condition.verification_status == VerificationStatus.CONFIRMED


def test_a_malformed_icd10_code_is_refused(doctor_a, patient):
    with pytest.raises(ValidationError, match="ICD-10"):
        condition_record(patient=patient, by=doctor_a, code="diabetes", display="Diabetes")

    assert not Condition.objects.exists()


def test_only_a_doctor_of_the_clinic_acknowledges_critical_results_and_every_waiting_one_is_taken(
    patient, staff_a, doctor_a, doctor_b
):
    def potassium(value, when):
        return observations_record(
            patient=patient, by=staff_a, entries=[ObservationInput("potassium", value, "mmol/L")], effective_at=when
        )

    (earlier,) = potassium(2.0, WHEN - datetime.timedelta(days=7))  # critical, no longer the latest
    (latest,) = potassium(7.0, WHEN)
    potassium(4.0, WHEN - datetime.timedelta(days=1))  # in range: nothing to acknowledge

    for someone in (staff_a, doctor_b):
        with pytest.raises(PermissionDenied):
            critical_results_acknowledge(patient=patient, by=someone)
    assert not Observation.objects.filter(acknowledged_at__isnull=False).exists()

    acknowledged = critical_results_acknowledge(patient=patient, by=doctor_a)

    assert [o.pk for o in acknowledged] == [earlier.pk, latest.pk]
    assert set(Observation.objects.filter(acknowledged_by=doctor_a).values_list("pk", flat=True)) == {
        earlier.pk, latest.pk
    }  # fmt: skip
    assert critical_results_acknowledge(patient=patient, by=doctor_a) == []
    assert AuditEvent.objects.filter(action="observation.critical.acknowledge").count() == 1
