"""Patient identity safeguards (hazard H3, results or advice reaching the wrong patient): birth dates inside
plausible bounds, MRNs unique per clinic regardless of case, and likely duplicates shown before a registration
is saved. Each safeguard is tried on every way a patient is created or changed: the portal, the API and the FHIR
import (the CSV import only adds results to patients already registered)."""

import datetime
import importlib
import json
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from clinic.tests.factories import ClinicFactory
from patients import services
from patients.fhir.services import fhir_import
from patients.models import Observation, Patient, Sex
from patients.selectors import SIMILAR_MRN, SIMILAR_NAME, patient_likely_duplicates
from patients.services import LikelyDuplicates, patient_create, patient_update
from patients.tests.factories import PatientFactory
from patients.validators import MAX_AGE_YEARS, earliest_birth_date, validate_birth_date

TODAY = timezone.localdate()
# The birth date users typed: 2030 (for 2003). Kept in the future when 2030 has come.
IN_2030 = datetime.date(max(2030, TODAY.year + 1), 6, 1)
FORM = {
    "mrn": "N-1", "given_name": "Nora", "family_name": "Vance", "birth_date": "1975-04-02", "sex": "female",
    "smoking": "unknown", "alcohol": "unknown", "physical_activity": "unknown", "diet": "unknown",
}  # fmt: skip
API_BODY = {"mrn": "N-1", "given_name": "Nora", "family_name": "Vance", "birth_date": "1975-04-02", "sex": "female"}
BEFORE_0010 = ("patients", "0009_resync_catalog_assays")
MIGRATION_0010 = ("patients", "0010_patient_identity_safeguards")


@pytest.fixture
def api(staff_a):
    client = APIClient()
    client.force_login(staff_a)
    return client


@pytest.fixture
def nora(clinic_a):
    return PatientFactory(
        clinic=clinic_a, mrn="D0000914", given_name="Nora", family_name="Vance", sex=Sex.FEMALE,
        birth_date=datetime.date(1975, 4, 2),
    )  # fmt: skip


def _fhir_file(*, mrn: str = "F-1", birth_date: str = "1970-01-01") -> bytes:
    """A Bundle of one Patient and one glucose result."""
    patient = {"resourceType": "Patient", "id": "p1", "identifier": [{"value": mrn}],
               "name": [{"family": "Doe", "given": ["Jo"]}], "gender": "female", "birthDate": birth_date}  # fmt: skip
    glucose = {
        "resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "effectiveDateTime": "2025-01-01T08:00:00Z", "valueQuantity": {"value": 99, "unit": "mg/dL", "code": "mg/dL"},
    }  # fmt: skip
    entries = [{"fullUrl": "urn:uuid:p1", "resource": patient}, {"resource": glucose}]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def _field_errors(response, field: str) -> list[str]:
    return response.context["form"].errors.get(field, [])


# --- birth dates --------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H3", "Validated today, tomorrow, exactly 120 years ago and the day before")
@pytest.mark.parametrize(
    ("birth_date", "refused"),
    [
        (TODAY, False),
        (TODAY + datetime.timedelta(days=1), True),
        (earliest_birth_date(TODAY), False),
        (earliest_birth_date(TODAY) - datetime.timedelta(days=1), True),
    ],
)
def test_a_birth_date_is_refused_in_the_future_or_more_than_120_years_ago(birth_date, refused):
    if refused:
        with pytest.raises(ValidationError, match="check the year"):
            validate_birth_date(birth_date)
    else:
        validate_birth_date(birth_date)


@pytest.mark.hazard("H3", "The earliest birth date on 29 February, 120 years after a year that was not a leap year")
def test_the_earliest_birth_date_on_29_february_falls_on_28_february():
    assert earliest_birth_date(datetime.date(2020, 2, 29)) == datetime.date(1900, 2, 28)
    assert earliest_birth_date(datetime.date(2028, 2, 29)) == datetime.date(1908, 2, 29)
    assert MAX_AGE_YEARS == 120


@pytest.mark.hazard("H3", "Registered a patient born in 2030 on the portal form")
def test_a_birth_date_in_2030_is_refused_on_the_registration_form(client, staff_a):
    client.force_login(staff_a)

    response = client.post(reverse("patients:create"), {**FORM, "birth_date": IN_2030.isoformat()})

    assert response.status_code == 200
    assert _field_errors(response, "birth_date") == [f"Birth date {IN_2030} is in the future; check the year."]
    assert not Patient.objects.exists()


@pytest.mark.hazard("H3", "Changed a birth date to 1850 on the portal's edit form")
def test_a_birth_date_more_than_120_years_ago_is_refused_on_the_edit_form(client, staff_a, nora):
    client.force_login(staff_a)

    response = client.post(reverse("patients:edit", args=[nora.pk]), {**FORM, "birth_date": "1850-01-01"})

    assert response.status_code == 200
    assert "more than 120 years ago" in _field_errors(response, "birth_date")[0]
    nora.refresh_from_db()
    assert nora.birth_date == datetime.date(1975, 4, 2)


@pytest.mark.hazard("H3", "Registered a patient born in 2030 through the API, and changed one's birth date to 2030")
def test_a_birth_date_in_2030_is_a_400_through_the_api(api, nora):
    created = api.post(reverse("patients-api:patient-list"), {**API_BODY, "birth_date": str(IN_2030)}, format="json")
    changed = api.patch(
        reverse("patients-api:patient-detail", args=[nora.pk]), {"birth_date": str(IN_2030)}, format="json"
    )

    assert (created.status_code, changed.status_code) == (400, 400)
    assert created.json()["birth_date"] == [f"Birth date {IN_2030} is in the future; check the year."]
    assert changed.json()["birth_date"] == [f"Birth date {IN_2030} is in the future; check the year."]
    assert list(Patient.objects.values_list("birth_date", flat=True)) == [datetime.date(1975, 4, 2)]


@pytest.mark.hazard("H3", "Called the registration service directly with a birth date in 2030")
def test_the_service_refuses_a_birth_date_in_2030(staff_a):
    with pytest.raises(ValidationError) as refused:
        patient_create(by=staff_a, **{**API_BODY, "birth_date": IN_2030})

    assert "birth_date" in refused.value.message_dict
    assert not Patient.objects.exists()


@pytest.mark.hazard("H3", "Imported a FHIR Patient born in 2030 with a result")
def test_a_fhir_patient_born_in_2030_refuses_the_file_and_writes_nothing(staff_a):
    with pytest.raises(ValidationError) as refused:
        fhir_import(by=staff_a, data=_fhir_file(birth_date=str(IN_2030)), name="future.json")

    assert any(f"Birth date {IN_2030} is in the future" in message for message in refused.value.messages)
    assert (Patient.objects.count(), Observation.objects.count()) == (0, 0)


# --- MRNs unique per clinic regardless of case --------------------------------------------------------------------


@pytest.mark.hazard("H3", "Registered MRN d0000914 on the portal beside D0000914 in the same clinic")
def test_mrn_d0000914_is_refused_beside_d0000914_upper_case_on_the_form(client, staff_a, nora):
    client.force_login(staff_a)

    response = client.post(
        reverse("patients:create"), {**FORM, "mrn": "d0000914", "given_name": "Zed", "family_name": "Other"}
    )

    assert response.status_code == 200
    assert _field_errors(response, "mrn") == [
        "A patient with MRN D0000914 already exists in this clinic: MRNs are compared without regard to case, "
        "so d0000914 is the same MRN."
    ]
    assert list(Patient.objects.all()) == [nora]


@pytest.mark.hazard("H3", "Registered d0000914 through the API beside D0000914, and changed another MRN to it")
def test_mrn_d0000914_is_a_400_through_the_api_on_create_and_on_change(api, clinic_a, nora):
    other = PatientFactory(clinic=clinic_a, mrn="E-1")

    created = api.post(reverse("patients-api:patient-list"), {**API_BODY, "mrn": "d0000914"}, format="json")
    changed = api.patch(reverse("patients-api:patient-detail", args=[other.pk]), {"mrn": "d0000914"}, format="json")

    assert (created.status_code, changed.status_code) == (400, 400)
    assert "MRNs are compared without regard to case" in created.json()["mrn"][0]
    assert "MRNs are compared without regard to case" in changed.json()["mrn"][0]
    assert sorted(Patient.objects.values_list("mrn", flat=True)) == ["D0000914", "E-1"]


@pytest.mark.hazard("H3", "Changed a patient's own MRN from D0000914 to d0000914")
def test_a_patient_may_change_the_case_of_its_own_mrn(staff_a, nora):
    patient_update(patient=nora, by=staff_a, mrn="d0000914")

    nora.refresh_from_db()
    assert nora.mrn == "d0000914"


@pytest.mark.hazard("H3", "Registered d0000914 in clinic B while clinic A has D0000914")
def test_the_same_mrn_in_another_case_is_allowed_in_another_clinic(doctor_b, nora):
    patient = patient_create(by=doctor_b, **{**API_BODY, "mrn": "d0000914"})

    assert (patient.clinic_id, patient.mrn) == (doctor_b.clinic_id, "d0000914")


@pytest.mark.hazard("H3", "Wrote d0000914 beside D0000914 straight to the database, past every form and service")
def test_the_database_refuses_mrns_that_differ_only_in_case(clinic_a, nora):
    with pytest.raises(IntegrityError), transaction.atomic():
        PatientFactory(clinic=clinic_a, mrn="d0000914")


@pytest.mark.hazard("H3", "Registered d0000914 while another registration stored D0000914 after the check")
def test_an_mrn_taken_between_the_check_and_the_save_is_a_validation_error(monkeypatch, staff_a, nora):
    monkeypatch.setattr(services, "_validate_patient", lambda patient: None)  # the other registration won the race

    with pytest.raises(ValidationError) as refused:
        patient_create(by=staff_a, register_anyway=True, **{**API_BODY, "mrn": "d0000914"})

    assert "MRNs are compared without regard to case" in refused.value.message_dict["mrn"][0]
    assert list(Patient.objects.all()) == [nora]


@pytest.mark.hazard("H3", "Imported a FHIR Patient with MRN d0000914 while D0000914 is on record")
def test_a_fhir_patient_whose_mrn_differs_only_in_case_refuses_the_file(staff_a, nora):
    with pytest.raises(ValidationError) as refused:
        fhir_import(by=staff_a, data=_fhir_file(mrn="d0000914"), name="case.json")

    assert any(
        "MRN d0000914 differs only in case from MRN D0000914 of a patient on record" in message
        for message in refused.value.messages
    )
    assert (list(Patient.objects.all()), Observation.objects.count()) == ([nora], 0)


@pytest.mark.hazard("H3", "Imported a FHIR file with two Patients, MRNs F-1 and f-1")
def test_two_fhir_patients_whose_mrns_differ_only_in_case_refuse_the_file(staff_a):
    bundle = json.loads(_fhir_file(mrn="F-1"))
    twin = {**bundle["entry"][0]["resource"], "id": "p2", "identifier": [{"value": "f-1"}]}
    bundle["entry"].append({"fullUrl": "urn:uuid:p2", "resource": twin})

    with pytest.raises(ValidationError) as refused:
        fhir_import(by=staff_a, data=json.dumps(bundle).encode(), name="twins.json")

    assert any("MRN f-1 differs only in case from MRN F-1 of this file" in m for m in refused.value.messages)
    assert not Patient.objects.exists()


# --- the migration that makes MRNs unique regardless of case, and the command that resolves clashes --------------


@pytest.fixture
def before_0010(transactional_db):
    """The schema before migration 0010, when MRNs were unique only in their exact case: its models (apps) to store
    clashes with. The latest schema is restored afterwards, without the test's patients."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE_0010])
    old_apps = executor.loader.project_state([BEFORE_0010]).apps
    yield old_apps
    old_apps.get_model("patients", "Patient").objects.all().delete()  # a clash left would stop the migration
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _store_clash(apps) -> tuple[Any, list[int]]:
    """Clinic A with D0000914, then d0000914 and d0000914-DUP1 (which a rename must step over); clinic B with
    d0000914 (no clash: another clinic)."""
    old_patient = apps.get_model("patients", "Patient")
    clinic_a, clinic_b = ClinicFactory(slug="riverside"), ClinicFactory(slug="hillcrest")
    person = {"given_name": "Ann", "family_name": "Lee", "birth_date": datetime.date(1970, 1, 1), "sex": "female"}
    ids = [
        old_patient.objects.create(clinic_id=clinic_a.pk, mrn=mrn, **person).pk
        for mrn in ("D0000914", "d0000914", "D0000914-dup1")
    ]
    old_patient.objects.create(clinic_id=clinic_b.pk, mrn="d0000914", **person)
    return clinic_a, ids


def _migrate_to_0010() -> None:
    MigrationExecutor(connection).migrate([MIGRATION_0010])


@pytest.mark.hazard("H3", "Migrated a database that holds D0000914 and d0000914 in one clinic")
def test_the_migration_refuses_to_run_while_mrns_differ_only_in_case_and_names_the_command(before_0010):
    clinic, (oldest, twin, _) = _store_clash(before_0010)

    with pytest.raises(CommandError) as refused:
        _migrate_to_0010()

    message = str(refused.value)
    assert f"clinic riverside (id {clinic.pk}): 'D0000914' (patient {oldest}), 'd0000914' (patient {twin})" in message
    assert "hillcrest" not in message
    assert "manage.py resolve_mrn_clashes --rename" in message
    assert MIGRATION_0010 not in MigrationExecutor(connection).loader.applied_migrations


@pytest.mark.hazard("H3", "Called the migration's check on a database without clashes")
def test_the_migration_check_passes_without_clashes(clinic_a, nora):
    migration = importlib.import_module("patients.migrations.0010_patient_identity_safeguards")

    migration.refuse_mrn_clashes(django_apps, None)


@pytest.mark.hazard("H3", "Ran resolve_mrn_clashes without --rename on a database with a clash")
def test_resolve_mrn_clashes_lists_the_clashes_and_changes_nothing(before_0010, capsys):
    clinic, (oldest, twin, _) = _store_clash(before_0010)

    call_command("resolve_mrn_clashes")

    out = capsys.readouterr().out
    assert f"clinic riverside (id {clinic.pk}): 'D0000914' (patient {oldest}), 'd0000914' (patient {twin})" in out
    assert "Run with --rename" in out
    assert Patient.objects.get(pk=twin).mrn == "d0000914"
    assert not AuditEvent.objects.exists()


@pytest.mark.hazard("H3", "Ran resolve_mrn_clashes --rename, then the migration, on a database with a clash")
def test_resolve_mrn_clashes_renames_all_but_the_oldest_audits_and_lets_the_migration_run(before_0010, capsys):
    clinic, (oldest, twin, _) = _store_clash(before_0010)

    call_command("resolve_mrn_clashes", "--rename")
    _migrate_to_0010()

    assert Patient.objects.get(pk=oldest).mrn == "D0000914"
    assert Patient.objects.get(pk=twin).mrn == "d0000914-DUP2"  # -DUP1 is taken, in another case
    [event] = AuditEvent.objects.filter(action="patient.mrn_rename")
    assert (event.patient_id, event.actor_username, event.clinic_id) == (
        twin,
        "manage.py resolve_mrn_clashes",
        clinic.pk,
    )
    assert event.detail == {"old_mrn": "d0000914", "new_mrn": "d0000914-DUP2", "clashed_with": oldest}
    assert f"patient {twin}: MRN 'd0000914' is now 'd0000914-DUP2'" in capsys.readouterr().out


@pytest.mark.hazard("H3", "Ran resolve_mrn_clashes on a database without clashes")
def test_resolve_mrn_clashes_says_so_when_there_are_none(nora, capsys):
    call_command("resolve_mrn_clashes", "--rename")

    assert capsys.readouterr().out == "No MRN clashes.\n"
    assert not AuditEvent.objects.filter(action="patient.mrn_rename").exists()


# --- likely duplicates --------------------------------------------------------------------------------------------


@pytest.mark.hazard("H3", "Registered an exact duplicate (same names, birth date and sex, another MRN) on the portal")
def test_an_exact_duplicate_person_is_shown_before_saving(client, staff_a, nora):
    client.force_login(staff_a)

    response = client.post(reverse("patients:create"), {**FORM, "mrn": "N-2"})

    html = response.content.decode()
    assert response.status_code == 200
    assert [(d.patient, d.reason) for d in response.context["form"].likely_duplicates] == [(nora, SIMILAR_NAME)]
    assert f'href="{reverse("patients:detail", args=[nora.pk])}"' in html
    assert "Vance, Nora" in html
    assert "<code>D0000914</code>" in html
    assert "born 1975-04-02" in html
    assert 'name="register_anyway"' in html
    assert list(Patient.objects.all()) == [nora]
    [shown] = AuditEvent.objects.filter(action="patient.list", actor=staff_a)
    assert shown.detail == {"likely_duplicates": [nora.pk], "count": 1}


@pytest.mark.hazard("H3", "Pressed Register anyway after the portal listed a likely duplicate")
def test_register_anyway_saves_the_patient_and_audits_the_duplicates(client, staff_a, nora):
    client.force_login(staff_a)

    response = client.post(reverse("patients:create"), {**FORM, "mrn": "N-2", "register_anyway": "Register anyway"})

    patient = Patient.objects.get(mrn="N-2")
    assert response["Location"] == reverse("patients:detail", args=[patient.pk])
    [event] = AuditEvent.objects.filter(action="patient.register_despite_duplicate")
    assert (event.actor, event.patient_id) == (staff_a, patient.pk)
    assert event.detail == {"duplicate_ids": [nora.pk], "reasons": [SIMILAR_NAME]}
    assert AuditEvent.objects.filter(action="patient.create", patient_id=patient.pk).exists()


@pytest.mark.hazard("H3", "Registered a patient without any likely duplicate: no warning, no extra audit row")
def test_a_new_person_is_registered_at_once(client, staff_a, nora):
    client.force_login(staff_a)

    response = client.post(reverse("patients:create"), {**FORM, "mrn": "N-2", "given_name": "Mara"})

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="patient.register_despite_duplicate").exists()


@pytest.fixture
def nora_in_clinic_b(clinic_b):
    return PatientFactory(
        clinic=clinic_b, mrn="N-1", given_name="Nora", family_name="Vance", birth_date=datetime.date(1975, 4, 2)
    )


@pytest.mark.hazard("H3", "Registered on the portal of clinic A the exact duplicate of a patient of clinic B")
def test_a_likely_duplicate_in_another_clinic_is_never_shown_on_the_portal(client, staff_a, nora_in_clinic_b):
    client.force_login(staff_a)

    response = client.post(reverse("patients:create"), FORM)

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="patient.register_despite_duplicate").exists()


@pytest.mark.hazard("H3", "Registered through the API of clinic A the exact duplicate of a patient of clinic B")
def test_a_likely_duplicate_in_another_clinic_is_never_shown_by_the_api(api, nora_in_clinic_b):
    response = api.post(reverse("patients-api:patient-list"), API_BODY, format="json")

    assert response.status_code == 201
    assert not AuditEvent.objects.filter(action="patient.register_despite_duplicate").exists()


@pytest.mark.hazard("H3", "Registered an exact duplicate through the API, then again with register_anyway")
def test_the_api_answers_400_with_the_likely_duplicates_unless_told_to_register_anyway(api, nora):
    refused = api.post(reverse("patients-api:patient-list"), {**API_BODY, "mrn": "N-2"}, format="json")
    created = api.post(
        reverse("patients-api:patient-list"), {**API_BODY, "mrn": "N-2", "register_anyway": True}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["likely_duplicates"] == [
        {"id": nora.pk, "mrn": "D0000914", "given_name": "Nora", "family_name": "Vance", "birth_date": "1975-04-02",
         "reason": SIMILAR_NAME}
    ]  # fmt: skip
    assert "register_anyway" in refused.json()["non_field_errors"][-1]
    assert AuditEvent.objects.get(action="patient.list").detail == {"likely_duplicates": [nora.pk], "count": 1}
    assert created.status_code == 201
    assert "register_anyway" not in created.json()
    [event] = AuditEvent.objects.filter(action="patient.register_despite_duplicate")
    assert event.detail["duplicate_ids"] == [nora.pk]


@pytest.mark.hazard("H3", "Called the registration service twice with the same person and another MRN")
def test_the_service_raises_likely_duplicates_and_writes_nothing(staff_a, nora):
    with pytest.raises(LikelyDuplicates) as found:
        patient_create(by=staff_a, **{**API_BODY, "mrn": "N-2", "birth_date": nora.birth_date})

    assert [d.patient for d in found.value.duplicates] == [nora]
    assert list(Patient.objects.all()) == [nora]
    assert not AuditEvent.objects.exists()


def _duplicates(clinic, *, given: str, family: str, born: datetime.date, mrn: str = "NEW-1") -> list[tuple[str, str]]:
    found = patient_likely_duplicates(
        clinic_id=clinic.pk, given_name=given, family_name=family, birth_date=born, mrn=mrn
    )
    return [(d.patient.mrn, d.reason) for d in found]


BORN = datetime.date(1975, 4, 2)


@pytest.mark.hazard("H3", "Looked for likely duplicates of names typed with and without accents, case or initials")
@pytest.mark.parametrize(
    ("given", "family", "born", "expected"),
    [
        ("José", "García", BORN, [("D0000914", SIMILAR_NAME)]),  # on record: Jose Garcia
        ("JOSE", "garcia", BORN, [("D0000914", SIMILAR_NAME)]),
        ("Joseph", "Garcia", BORN, [("D0000914", SIMILAR_NAME)]),  # same family name and initial
        ("Garcia", "Jose", BORN, [("D0000914", SIMILAR_NAME)]),  # given and family names swapped
        ("Maria", "Garcia", BORN, []),  # another initial
        ("Jose", "Garcia", BORN + datetime.timedelta(days=1), []),  # another birth date
        ("Jose", "Garcia-Lopez", BORN, []),
    ],
)
def test_similar_names_born_the_same_day_are_likely_duplicates(clinic_a, given, family, born, expected):
    PatientFactory(clinic=clinic_a, mrn="D0000914", given_name="Jose", family_name="Garcia", birth_date=BORN)

    assert _duplicates(clinic_a, given=given, family=family, born=born) == expected


@pytest.mark.hazard("H3", "Looked for likely duplicates of MRNs typed with leading zeros, spaces or in another case")
@pytest.mark.parametrize(
    ("mrn", "expected"),
    [
        ("914", [("000914", SIMILAR_MRN)]),
        ("0914", [("000914", SIMILAR_MRN)]),
        (" 00914 ", [("000914", SIMILAR_MRN)]),
        ("9140", []),
        ("1914", []),
        ("9.4", []),  # a regular expression's wildcard is a dot here
    ],
)
def test_mrns_that_differ_only_in_leading_zeros_or_spaces_are_likely_duplicates(clinic_a, mrn, expected):
    PatientFactory(clinic=clinic_a, mrn="000914", given_name="Ann", family_name="Lee", birth_date=BORN)

    assert _duplicates(clinic_a, given="Zed", family="Other", born=datetime.date(1990, 1, 1), mrn=mrn) == expected


@pytest.mark.hazard("H3", "Looked for likely duplicates of a letter-and-digit MRN in another case and with zeros")
def test_a_letter_and_digit_mrn_in_another_case_is_a_likely_duplicate(clinic_a, clinic_b):
    PatientFactory(clinic=clinic_a, mrn="ab-12", birth_date=BORN)
    PatientFactory(clinic=clinic_b, mrn="AB-12", birth_date=BORN)

    assert _duplicates(clinic_a, given="Zed", family="Other", born=BORN, mrn="00AB-12") == [("ab-12", SIMILAR_MRN)]
