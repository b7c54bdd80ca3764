import datetime
import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.models import AuditEvent, Role
from clinic.testing import audit_write_queries
from clinic.tests.factories import UserFactory
from patients.api.serializers import PatientSerializer
from patients.catalog import catalog
from patients.models import Condition, Observation, ObservationSource, Patient, Sex, VerificationStatus
from patients.services import PATIENT_FIELDS, ObservationInput, critical_results_acknowledge, observations_record
from patients.tests.factories import ConditionFactory, PatientFactory

WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
CLINICAL_ROLES = [Role.ADMIN, Role.DOCTOR, Role.STAFF]
PATIENT_READS = ["patient-detail", "observation-list", "condition-list"]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a, given_name="Adam", family_name="Stone", mrn="A-100", sex=Sex.MALE)


@pytest.fixture
def own_record(clinic_a, patient_user_a):
    return PatientFactory(clinic=clinic_a, given_name="Pat", family_name="Own", mrn="P-1", user=patient_user_a)


@pytest.fixture
def condition_a(patient_a, doctor_a):
    return ConditionFactory(patient=patient_a, recorded_by=doctor_a)


def url(name, *args):
    return reverse(f"patients-api:{name}", args=args)


def patient_url(name, patient, *args):
    """URLs of one patient: `patient-detail` takes its id, the nested lists take it as `patient_pk`."""
    return url(name, patient.pk, *args)


def record(patient, by, when=WHEN, **values):
    """Enter results through the service; a value is a number in the canonical unit or a (number, unit) pair."""
    entries = [
        ObservationInput(code, *(value if isinstance(value, tuple) else (value, catalog().by_code[code].unit)))
        for code, value in values.items()
    ]
    return observations_record(patient=patient, by=by, entries=entries, effective_at=when)


def audit_actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def new_patient(**overrides):
    return {"mrn": "N-1", "given_name": "Nora", "family_name": "Vale", "birth_date": "1975-04-02", "sex": "female"} | (
        overrides
    )


# --- authentication --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "needs_patient"),
    [
        ("get", "patient-list", False),
        ("post", "patient-list", False),
        ("get", "patient-detail", True),
        ("patch", "patient-detail", True),
        ("get", "observation-list", True),
        ("post", "observation-list", True),
        ("get", "condition-list", True),
        ("post", "condition-list", True),
        ("get", "analyte-list", False),
    ],
)
def test_anonymous_callers_are_refused_everywhere(api, patient_a, method, name, needs_patient):
    target = patient_url(name, patient_a) if needs_patient else url(name)

    response = getattr(api, method)(target, {}, format="json")

    assert response.status_code == 401  # the token class comes first: a challenge, `WWW-Authenticate: Token`
    assert response["WWW-Authenticate"] == "Token"
    assert AuditEvent.objects.count() == 0


def test_anonymous_callers_cannot_change_a_condition_or_read_an_analyte(api, condition_a):
    assert api.patch(url("condition-detail", condition_a.patient_id, condition_a.pk), {}).status_code == 401
    assert api.get(url("analyte-detail", "glucose")).status_code == 401


def test_a_token_from_the_token_endpoint_authenticates_api_calls(api, clinic_a, patient_a):
    UserFactory(clinic=clinic_a, role=Role.STAFF, username="tokenuser", password="correct horse battery")

    response = api.post("/api/v1/auth/token/", {"username": "tokenuser", "password": "correct horse battery"})
    assert response.status_code == 200

    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get(url("patient-list")).json()["count"] == 1
    # Token authentication carries no cookie, so no CSRF token is needed to write.
    assert api.post(url("patient-list"), new_patient(), format="json").status_code == 201


def test_session_authenticated_writes_need_the_csrf_token(staff_a):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(staff_a)

    response = api.post(url("patient-list"), new_patient(), format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Patient.objects.exists()
    # What a forged cross-site request looks like: refused, and in the trail under the session's user.
    [denial] = AuditEvent.objects.filter(action="access.denied")
    assert (denial.actor, denial.outcome) == (staff_a, "denied")
    assert denial.detail == {"method": "POST", "path": url("patient-list"), "status": 403, "credentials": "refused"}


def test_session_authenticated_reads_need_no_csrf_token(staff_a, patient_a):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(staff_a)

    assert api.get(url("patient-list")).status_code == 200


# --- access per role and clinic --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [*CLINICAL_ROLES, Role.PATIENT])
def test_every_role_reads_the_analyte_catalog(api, users_by_role, role):
    api.force_authenticate(users_by_role[role])

    assert api.get(url("analyte-list")).status_code == 200
    assert api.get(url("analyte-detail", "glucose")).status_code == 200


@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_clinical_roles_list_their_clinics_patients_only(api, users_by_role, role, patient_a, clinic_b):
    PatientFactory(clinic=clinic_b, family_name="Elsewhere")
    api.force_authenticate(users_by_role[role])

    response = api.get(url("patient-list"))

    assert response.status_code == 200
    assert [row["family_name"] for row in response.json()["results"]] == ["Stone"]


@pytest.mark.parametrize("role", CLINICAL_ROLES)
@pytest.mark.parametrize("name", PATIENT_READS)
def test_clinical_roles_read_a_patient_of_their_clinic(api, users_by_role, role, name, patient_a):
    api.force_authenticate(users_by_role[role])

    assert api.get(patient_url(name, patient_a)).status_code == 200


@pytest.mark.parametrize("name", PATIENT_READS)
def test_a_doctor_of_another_clinic_gets_404_on_reads(api, doctor_b, patient_a, name):
    api.force_authenticate(doctor_b)

    assert api.get(patient_url(name, patient_a)).status_code == 404


def test_a_doctor_of_another_clinic_gets_404_on_writes_and_nothing_changes(api, doctor_b, patient_a, condition_a):
    api.force_authenticate(doctor_b)
    single = {"analyte": "glucose", "value": 5, "unit": "mmol/L", "effective_at": WHEN.isoformat()}

    responses = [
        api.patch(patient_url("patient-detail", patient_a), {"given_name": "Hacked"}, format="json"),
        api.post(patient_url("observation-list", patient_a), single, format="json"),
        api.post(patient_url("condition-list", patient_a), {"code": "D50", "display": "Anemia"}, format="json"),
        api.patch(url("condition-detail", patient_a.pk, condition_a.pk), {"note": "x"}, format="json"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    patient_a.refresh_from_db()
    assert patient_a.given_name == "Adam"
    assert not Observation.objects.exists()
    assert Condition.objects.count() == 1
    assert set(AuditEvent.objects.values_list("action", "outcome")) == {("access.denied", "denied")}
    assert AuditEvent.objects.count() == 4  # one per refused write, nothing else


def test_a_doctor_of_another_clinic_does_not_see_the_patient_in_the_list(api, doctor_b, patient_a):
    api.force_authenticate(doctor_b)

    assert api.get(url("patient-list")).json()["results"] == []


def test_a_condition_of_another_patient_is_404_under_this_patient(api, doctor_a, patient_a, clinic_a):
    other = ConditionFactory(patient=PatientFactory(clinic=clinic_a))
    api.force_authenticate(doctor_a)

    response = api.patch(url("condition-detail", patient_a.pk, other.pk), {"note": "x"}, format="json")

    assert response.status_code == 404


def test_a_patient_lists_only_their_own_record(api, patient_user_a, own_record, patient_a):
    api.force_authenticate(patient_user_a)

    response = api.get(url("patient-list"))

    assert [row["id"] for row in response.json()["results"]] == [own_record.pk]


@pytest.mark.parametrize("name", PATIENT_READS)
def test_a_patient_reads_their_own_record(api, patient_user_a, own_record, name):
    api.force_authenticate(patient_user_a)

    assert api.get(patient_url(name, own_record)).status_code == 200


@pytest.mark.parametrize("name", PATIENT_READS)
def test_a_patient_gets_404_for_another_patient_of_the_clinic(api, patient_user_a, own_record, patient_a, name):
    api.force_authenticate(patient_user_a)

    assert api.get(patient_url(name, patient_a)).status_code == 404


def test_a_patient_cannot_write_even_their_own_record(api, patient_user_a, own_record):
    condition = ConditionFactory(patient=own_record)
    api.force_authenticate(patient_user_a)
    single = {"analyte": "glucose", "value": 5, "unit": "mmol/L", "effective_at": WHEN.isoformat()}

    responses = [
        api.post(url("patient-list"), new_patient(), format="json"),
        api.patch(patient_url("patient-detail", own_record), {"given_name": "Changed"}, format="json"),
        api.post(patient_url("observation-list", own_record), single, format="json"),
        api.post(patient_url("condition-list", own_record), {"code": "D50", "display": "Anemia"}, format="json"),
        api.patch(url("condition-detail", own_record.pk, condition.pk), {"note": "x"}, format="json"),
    ]

    assert [r.status_code for r in responses] == [403] * 5
    own_record.refresh_from_db()
    assert own_record.given_name == "Pat"
    assert Patient.objects.count() == 1
    assert not Observation.objects.exists()
    assert Condition.objects.get().note == ""


@pytest.mark.parametrize(("method", "name"), [("put", "patient-detail"), ("delete", "patient-detail")])
def test_patients_cannot_be_replaced_or_deleted_through_the_api(api, admin_a, patient_a, method, name):
    api.force_authenticate(admin_a)

    response = getattr(api, method)(patient_url(name, patient_a), new_patient(), format="json")

    assert response.status_code == 405
    assert Patient.objects.filter(pk=patient_a.pk).exists()


# --- patients: writes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_clinical_roles_register_a_patient_in_their_clinic(api, users_by_role, role, clinic_a):
    api.force_authenticate(users_by_role[role])

    response = api.post(url("patient-list"), new_patient(), format="json")

    assert response.status_code == 201
    patient = Patient.objects.get()
    assert response.json()["id"] == patient.pk
    assert response.json()["clinic"] == clinic_a.pk
    assert (patient.clinic, patient.mrn, patient.sex) == (clinic_a, "N-1", "female")


def test_clinic_id_and_timestamps_sent_on_create_are_ignored(api, staff_a, clinic_a, clinic_b):
    api.force_authenticate(staff_a)
    body = new_patient(clinic=clinic_b.pk, id=999, created_at="2000-01-01T00:00:00Z")

    response = api.post(url("patient-list"), body, format="json")

    assert response.status_code == 201
    patient = Patient.objects.get()
    assert patient.clinic == clinic_a
    assert patient.pk != 999
    assert patient.created_at.year > 2000


def test_unknown_fields_are_refused_on_create(api, staff_a, doctor_b):
    api.force_authenticate(staff_a)

    response = api.post(url("patient-list"), new_patient(user=doctor_b.pk), format="json")

    assert response.status_code == 400
    assert response.json() == {"user": ["Unknown field."]}
    assert not Patient.objects.exists()


def test_a_duplicate_mrn_in_the_clinic_is_a_400(api, staff_a, patient_a):
    api.force_authenticate(staff_a)

    response = api.post(url("patient-list"), new_patient(mrn=patient_a.mrn), format="json")

    assert response.status_code == 400
    assert Patient.objects.count() == 1


def test_a_patient_with_missing_or_invalid_fields_is_a_400(api, staff_a):
    api.force_authenticate(staff_a)

    response = api.post(url("patient-list"), {"mrn": "X", "sex": "robot", "birth_date": "soon"}, format="json")

    assert response.status_code == 400
    assert {"given_name", "family_name", "sex", "birth_date"} <= set(response.json())
    assert not Patient.objects.exists()


def test_a_patch_changes_only_the_fields_sent_and_ignores_the_clinic(api, staff_a, patient_a, clinic_a, clinic_b):
    api.force_authenticate(staff_a)

    response = api.patch(
        patient_url("patient-detail", patient_a), {"phone": "555-0101", "clinic": clinic_b.pk}, format="json"
    )

    assert response.status_code == 200
    patient_a.refresh_from_db()
    assert (patient_a.phone, patient_a.given_name, patient_a.clinic) == ("555-0101", "Adam", clinic_a)
    assert response.json()["clinic"] == clinic_a.pk


def test_a_patch_with_an_unknown_field_changes_nothing(api, staff_a, patient_a, patient_user_a):
    api.force_authenticate(staff_a)

    response = api.patch(
        patient_url("patient-detail", patient_a), {"phone": "555", "user": patient_user_a.pk}, format="json"
    )

    assert response.status_code == 400
    patient_a.refresh_from_db()
    assert (patient_a.phone, patient_a.user_id) == ("", None)


def test_the_writable_patient_fields_are_exactly_those_the_service_accepts():
    serializer = PatientSerializer()
    writable = {name for name, field in serializer.fields.items() if not field.read_only}

    assert writable == PATIENT_FIELDS


# --- observations ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_clinical_roles_record_one_result(api, users_by_role, role, patient_a):
    api.force_authenticate(users_by_role[role])
    body = {"analyte": "hemoglobin", "value": 14.1, "unit": "g/dL", "effective_at": WHEN.isoformat()}

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 201
    [row] = response.json()["created"]
    assert row["analyte"] == "hemoglobin"
    assert row["value"] == 14.1
    assert row["interpretation"] == "N"
    assert row["source"] == "api"
    observation = Observation.objects.get()
    assert observation.entered_by == users_by_role[role]
    assert observation.source == ObservationSource.API


def test_glucose_in_mg_per_dl_is_stored_in_mmol_per_l_and_keeps_what_was_entered(api, staff_a, patient_a):
    api.force_authenticate(staff_a)
    body = {"analyte": "glucose", "value": 126, "unit": "mg/dL", "effective_at": WHEN.isoformat()}

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 201
    [row] = response.json()["created"]
    factor = next(c.factor for c in catalog().by_code["glucose"].conversions if c.unit == "mg/dL")
    assert row["value"] == pytest.approx(126 * factor)
    assert row["value"] == pytest.approx(6.99, abs=0.01)
    assert (row["unit"], row["entered_value"], row["entered_unit"]) == ("mmol/L", 126, "mg/dL")
    assert row["interpretation"] == "H"
    assert Observation.objects.get().value == pytest.approx(126 * factor)


def test_glucose_in_mmol_per_l_is_stored_as_entered(api, staff_a, patient_a):
    api.force_authenticate(staff_a)
    body = {"analyte": "glucose", "value": 5.2, "unit": "mmol/L", "effective_at": WHEN.isoformat()}

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    [row] = response.json()["created"]
    assert (row["value"], row["unit"], row["entered_value"], row["entered_unit"]) == (5.2, "mmol/L", 5.2, "mmol/L")
    assert row["interpretation"] == "N"


def test_a_panel_is_recorded_with_analytes_named_by_code_loinc_or_name(api, doctor_a, patient_a):
    api.force_authenticate(doctor_a)
    body = {
        "effective_at": WHEN.isoformat(),
        "results": [
            {"analyte": "hemoglobin", "value": 13.5, "unit": "g/dL"},
            {"analyte": "2345-7", "value": 90, "unit": "mg/dL"},
            {"analyte": "LDL cholesterol", "value": 3.0, "unit": "mmol/L"},
        ],
    }

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 201, response.json()
    assert sorted(row["analyte"] for row in response.json()["created"]) == ["glucose_random", "hemoglobin", "ldl"]
    assert Observation.objects.count() == 3


def test_recording_the_same_panel_twice_writes_nothing_new(api, staff_a, patient_a):
    api.force_authenticate(staff_a)
    body = {"analyte": "glucose", "value": 5.2, "unit": "mmol/L", "effective_at": WHEN.isoformat()}
    api.post(patient_url("observation-list", patient_a), body, format="json")

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 200
    assert response.json() == {"created": [], "skipped_duplicates": 1}
    assert Observation.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        ("NaN", "mmol/L", "valid number"),
        ("Infinity", "mmol/L", "valid number"),
        ("-Infinity", "mmol/L", "valid number"),
        ("five", "mmol/L", "valid number"),
        (True, "mmol/L", "valid number"),
        (None, "mmol/L", "null"),
        (-5, "mmol/L", "plausible range"),
        (1e308, "mmol/L", "plausible range"),
        (5.2, "mg/L", "accepted units: mmol/L, mg/dL"),
        (5.2, "", "blank"),
        (540, "mmol/L", "Did you mean mg/dL?"),
    ],
)
def test_an_impossible_value_is_a_400_with_a_message_and_nothing_is_written(
    api, staff_a, patient_a, value, unit, message
):
    api.force_authenticate(staff_a)
    body = {"analyte": "glucose", "value": value, "unit": unit, "effective_at": WHEN.isoformat()}

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 400
    assert message in json.dumps(response.json())
    assert not Observation.objects.exists()
    assert "observation.create" not in audit_actions()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309"])
def test_non_finite_json_number_literals_are_a_400(api, staff_a, patient_a, literal):
    api.force_authenticate(staff_a)
    body = f'{{"analyte": "glucose", "value": {literal}, "unit": "mmol/L", "effective_at": "{WHEN.isoformat()}"}}'

    response = api.post(patient_url("observation-list", patient_a), body, content_type="application/json")

    assert response.status_code == 400
    assert not Observation.objects.exists()


@pytest.mark.hazard(
    "H11", "An API panel with an impossible glucose and an unknown analyte: 400 naming both, nothing written"
)
def test_one_impossible_value_refuses_the_whole_panel(api, staff_a, patient_a):
    api.force_authenticate(staff_a)
    body = {
        "effective_at": WHEN.isoformat(),
        "results": [
            {"analyte": "hemoglobin", "value": 13.5, "unit": "g/dL"},
            {"analyte": "glucose", "value": 9000, "unit": "mmol/L"},
            {"analyte": "unobtainium", "value": 1, "unit": "g/L"},
        ],
    }

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"glucose", "unobtainium"}
    assert "Unknown analyte" in response.json()["unobtainium"][0]
    assert not Observation.objects.exists()


def test_the_same_analyte_twice_in_one_panel_is_a_400(api, staff_a, patient_a):
    api.force_authenticate(staff_a)
    body = {
        "effective_at": WHEN.isoformat(),
        "results": [
            {"analyte": "glucose", "value": 5.0, "unit": "mmol/L"},
            {"analyte": "1558-6", "value": 5.0, "unit": "mmol/L"},
        ],
    }

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 400
    assert "more than once" in json.dumps(response.json())
    assert not Observation.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"effective_at": WHEN.isoformat()},
        {"analyte": "glucose", "value": 5.0, "effective_at": WHEN.isoformat()},
        {"effective_at": WHEN.isoformat(), "results": []},
        {
            "analyte": "glucose",
            "value": 5.0,
            "unit": "mmol/L",
            "effective_at": WHEN.isoformat(),
            "results": [{"analyte": "hemoglobin", "value": 13.5, "unit": "g/dL"}],
        },
        {"analyte": "glucose", "value": 5.0, "unit": "mmol/L"},
        {"analyte": "glucose", "value": 5.0, "unit": "mmol/L", "effective_at": "2999-01-01T00:00:00Z"},
        {"analyte": "glucose", "value": 5.0, "unit": "mmol/L", "effective_at": "1900-01-01T00:00:00Z"},
        {"analyte": "glucose", "value": 5.0, "unit": "mmol/L", "effective_at": "yesterday"},
        {"effective_at": WHEN.isoformat(), "results": [{"analyte": "glucose", "value": 5.0}]},
        {"effective_at": WHEN.isoformat(), "results": "glucose"},
        [1, 2],
    ],
    ids=[
        "nothing",
        "no-unit",
        "empty-panel",
        "both-shapes",
        "no-time",
        "future",
        "before-birth",
        "bad-time",
        "panel-row-without-unit",
        "results-not-a-list",
        "not-an-object",
    ],
)
def test_a_malformed_observation_request_is_a_400_and_nothing_is_written(api, staff_a, patient_a, body):
    api.force_authenticate(staff_a)

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 400
    assert not Observation.objects.exists()


def test_computed_observation_fields_cannot_be_sent(api, staff_a, doctor_a, patient_a):
    api.force_authenticate(staff_a)
    body = {
        "analyte": "glucose",
        "value": 20,
        "unit": "mmol/L",
        "effective_at": WHEN.isoformat(),
        "interpretation": "N",
        "source": "fhir",
        "entered_by": doctor_a.pk,
    }

    response = api.post(patient_url("observation-list", patient_a), body, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"interpretation", "source", "entered_by"}
    assert not Observation.objects.exists()


@pytest.fixture
def results_a(patient_a, staff_a):
    record(patient_a, staff_a, when=WHEN - datetime.timedelta(days=60), glucose=5.0, hemoglobin=14.0)
    record(patient_a, staff_a, when=WHEN - datetime.timedelta(days=30), glucose=7.5, ldl=2.0)
    record(patient_a, staff_a, when=WHEN, glucose=2.0, hemoglobin=(150, "g/L"))
    return patient_a


def listed(response):
    assert response.status_code == 200, response.json()
    return [(row["analyte"], row["effective_at"][:10]) for row in response.json()["results"]]


def test_observations_are_listed_newest_first_with_both_units(api, doctor_a, results_a):
    api.force_authenticate(doctor_a)

    response = api.get(patient_url("observation-list", results_a))

    rows = response.json()["results"]
    assert response.json()["count"] == 6
    assert rows[0]["effective_at"] == "2026-03-01T09:30:00Z"
    hemoglobin = next(row for row in rows if row["analyte"] == "hemoglobin")
    assert hemoglobin == hemoglobin | {
        "analyte_name": "Hemoglobin",
        "value": 15.0,
        "unit": "g/dL",
        "entered_value": 150.0,
        "entered_unit": "g/L",
        "interpretation": "N",
        "source": "manual",
    }


def test_an_acknowledged_critical_value_names_its_doctor_time_and_note(api, doctor_a, results_a):
    critical_results_acknowledge(patient=results_a, by=doctor_a, note="Glucose gel given, rechecked at 15 min")
    api.force_authenticate(doctor_a)

    rows = api.get(patient_url("observation-list", results_a)).json()["results"]

    acknowledged = [row for row in rows if row["acknowledged_by"] is not None]
    assert [(row["analyte"], row["interpretation"], row["acknowledged_by"]) for row in acknowledged] == [
        ("glucose", "LL", doctor_a.pk)
    ]
    assert acknowledged[0]["acknowledged_at"] is not None
    assert acknowledged[0]["acknowledgement_note"] == "Glucose gel given, rechecked at 15 min"
    assert all(row["acknowledged_at"] is None for row in rows if row not in acknowledged)


def test_observations_filter_by_analyte_code_or_loinc(api, doctor_a, results_a):
    api.force_authenticate(doctor_a)

    by_code = listed(api.get(patient_url("observation-list", results_a), {"analyte": "hemoglobin"}))
    by_loinc = listed(api.get(patient_url("observation-list", results_a), {"analyte": "718-7"}))
    unknown = listed(api.get(patient_url("observation-list", results_a), {"analyte": "unobtainium"}))

    assert by_code == by_loinc == [("hemoglobin", "2026-03-01"), ("hemoglobin", "2025-12-31")]
    assert unknown == []


def test_observations_filter_by_date_range_inclusive(api, doctor_a, results_a):
    api.force_authenticate(doctor_a)
    target = patient_url("observation-list", results_a)

    within = listed(api.get(target, {"effective_at_after": "2026-01-30", "effective_at_before": "2026-01-30"}))
    since = listed(api.get(target, {"effective_at_after": "2026-01-30", "analyte": "glucose"}))

    assert sorted(within) == [("glucose", "2026-01-30"), ("ldl", "2026-01-30")]
    assert since == [("glucose", "2026-03-01"), ("glucose", "2026-01-30")]


def test_observations_filter_by_flag(api, doctor_a, results_a):
    api.force_authenticate(doctor_a)
    target = patient_url("observation-list", results_a)

    high = listed(api.get(target, {"interpretation": "H"}))
    abnormal = listed(api.get(target + "?interpretation=H&interpretation=LL"))

    assert high == [("glucose", "2026-01-30")]
    assert abnormal == [("glucose", "2026-03-01"), ("glucose", "2026-01-30")]


def test_observations_order_by_the_allowed_fields(api, doctor_a, results_a):
    api.force_authenticate(doctor_a)
    target = patient_url("observation-list", results_a)

    oldest_first = listed(api.get(target, {"ordering": "effective_at"}))
    by_analyte = listed(api.get(target, {"ordering": "analyte,-effective_at"}))

    assert [day for _, day in oldest_first] == sorted(day for _, day in oldest_first)
    assert [code for code, _ in by_analyte] == ["glucose"] * 3 + ["hemoglobin"] * 2 + ["ldl"]
    assert by_analyte[:3] == [("glucose", "2026-03-01"), ("glucose", "2026-01-30"), ("glucose", "2025-12-31")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"ordering": "value"}, 400),
        ({"ordering": "patient__clinic__name"}, 400),
        ({"interpretation": "bad"}, 400),
        ({"effective_at_after": "not-a-date"}, 400),
        ({"page": "999"}, 404),
        ({"page": "x"}, 404),
    ],
)
def test_bad_observation_filters_are_refused_not_a_500(api, doctor_a, results_a, query, expected):
    api.force_authenticate(doctor_a)

    response = api.get(patient_url("observation-list", results_a), query)

    assert response.status_code == expected
    assert "observation.list" not in audit_actions()


# --- conditions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_clinical_roles_record_a_provisional_condition(api, users_by_role, role, patient_a):
    api.force_authenticate(users_by_role[role])

    response = api.post(patient_url("condition-list", patient_a), {"code": "d50", "display": "Anemia"}, format="json")

    assert response.status_code == 201
    assert response.json() | {"id": 0, "recorded_at": "", "updated_at": ""} == {
        "id": 0,
        "patient": patient_a.pk,
        "code": "D50",
        "display": "Anemia",
        "onset_date": None,
        "clinical_status": "active",
        "verification_status": "provisional",
        "note": "",
        "source": "manual",
        "source_verification_status": "",
        "verified_by": users_by_role[role].username,
        "recorded_by": users_by_role[role].username,
        "recorded_at": "",
        "updated_at": "",
    }


def test_only_a_doctor_confirms_a_diagnosis(api, staff_a, doctor_a, patient_a, condition_a):
    body = {"code": "E11.9", "display": "Type 2 diabetes", "verification_status": "confirmed"}
    target = url("condition-detail", patient_a.pk, condition_a.pk)

    api.force_authenticate(staff_a)
    refused_create = api.post(patient_url("condition-list", patient_a), body, format="json")
    refused_update = api.patch(target, {"verification_status": "confirmed"}, format="json")
    api.force_authenticate(doctor_a)
    confirmed = api.patch(target, {"verification_status": "confirmed"}, format="json")

    assert (refused_create.status_code, refused_update.status_code) == (403, 403)
    assert "Only a doctor" in refused_update.json()["detail"]
    assert confirmed.status_code == 200
    assert Condition.objects.get().verification_status == VerificationStatus.CONFIRMED


def test_an_invalid_icd10_code_is_a_400(api, doctor_a, patient_a):
    api.force_authenticate(doctor_a)

    response = api.post(patient_url("condition-list", patient_a), {"code": "XYZ", "display": "?"}, format="json")

    assert response.status_code == 400
    assert "ICD-10" in response.json()["code"][0]
    assert not Condition.objects.exists()


def test_the_recorder_and_patient_of_a_condition_cannot_be_sent(api, staff_a, doctor_a, patient_a, clinic_a):
    other = PatientFactory(clinic=clinic_a)
    api.force_authenticate(staff_a)
    body = {"code": "D50", "display": "Anemia", "patient": other.pk, "recorded_by": doctor_a.username}

    response = api.post(patient_url("condition-list", patient_a), body, format="json")

    assert response.status_code == 201
    condition = Condition.objects.get()
    assert (condition.patient, condition.recorded_by) == (patient_a, staff_a)


def test_conditions_filter_by_verification_status(api, doctor_a, patient_a):
    ConditionFactory(patient=patient_a, code="D50", verification_status=VerificationStatus.CONFIRMED)
    ConditionFactory(patient=patient_a, code="E11.9")
    api.force_authenticate(doctor_a)

    response = api.get(patient_url("condition-list", patient_a), {"verification_status": "confirmed"})

    assert [row["code"] for row in response.json()["results"]] == ["D50"]
    assert api.get(patient_url("condition-list", patient_a), {"ordering": "note"}).status_code == 400


# --- patient list filters --------------------------------------------------------------------------------------


@pytest.fixture
def registry(clinic_a, staff_a):
    def born(years_ago):
        return datetime.date(timezone.localdate().year - years_ago, 1, 1)

    young = PatientFactory(
        clinic=clinic_a, given_name="Yara", family_name="Young", mrn="Y-1", sex=Sex.MALE, birth_date=born(25)
    )
    PatientFactory(clinic=clinic_a, given_name="Mia", family_name="Middle", mrn="M-1", birth_date=born(50))
    old = PatientFactory(clinic=clinic_a, given_name="Ida", family_name="Old", mrn="O-1", birth_date=born(70))
    record(old, staff_a, glucose=9.0)
    ConditionFactory(patient=young, code="D50", display="Anemia")
    return clinic_a


def names(response):
    assert response.status_code == 200, response.json()
    return [row["family_name"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["Middle", "Old", "Young"]),
        ({"q": "old"}, ["Old"]),
        ({"q": "M-1"}, ["Middle"]),
        ({"sex": "male"}, ["Young"]),
        ({"age_band": "65+"}, ["Old"]),
        ({"age_band": "18-39"}, ["Young"]),
        ({"abnormal": "true"}, ["Old"]),
        ({"condition": "D5"}, ["Young"]),
        ({"ordering": "-name"}, ["Young", "Old", "Middle"]),
        ({"ordering": "birth_date"}, ["Old", "Middle", "Young"]),
    ],
)
def test_the_patient_list_filters_and_orders(api, staff_a, registry, query, expected):
    api.force_authenticate(staff_a)

    assert names(api.get(url("patient-list"), query)) == expected


def test_the_patient_list_filters_on_a_critical_latest_value(api, staff_a, registry):
    young, middle = Patient.objects.get(family_name="Young"), Patient.objects.get(family_name="Middle")
    record(young, staff_a, potassium=7.0)
    record(middle, staff_a, potassium=2.0)
    record(middle, staff_a, when=WHEN + datetime.timedelta(days=1), potassium=4.0)  # back in range
    api.force_authenticate(staff_a)

    assert names(api.get(url("patient-list"), {"critical": "true"})) == ["Young"]
    assert names(api.get(url("patient-list"), {"abnormal": "true", "critical": "false"})) == ["Old", "Young"]


@pytest.mark.parametrize(
    "query", [{"ordering": "given_name"}, {"ordering": "clinic__name"}, {"sex": "robot"}, {"age_band": "1-2"}]
)
def test_unknown_patient_filter_values_are_a_400_not_a_500(api, staff_a, registry, query):
    api.force_authenticate(staff_a)

    response = api.get(url("patient-list"), query)

    assert response.status_code == 400
    assert "patient.list" not in audit_actions()


def test_the_patient_list_is_paginated(api, staff_a, registry):
    api.force_authenticate(staff_a)

    first = api.get(url("patient-list"), {"page_size": 2}).json()
    second = api.get(url("patient-list"), {"page_size": 2, "page": 2}).json()

    assert first["count"] == 3
    assert [row["family_name"] for row in first["results"] + second["results"]] == ["Middle", "Old", "Young"]
    assert first["next"] is not None
    assert second["next"] is None


# --- analytes --------------------------------------------------------------------------------------------------


def test_the_analyte_catalog_lists_every_analyte_with_units_ranges_and_citations(api, staff_a):
    api.force_authenticate(staff_a)

    body = api.get(url("analyte-list")).json()

    assert body["count"] == len(catalog().specs())
    glucose = next(row for row in body["results"] if row["code"] == "glucose")
    assert glucose["loinc"][0] == "1558-6"
    assert glucose["unit"] == "mmol/L"
    assert [c["unit"] for c in glucose["conversions"]] == ["mg/dL"]
    assert glucose["reference_ranges"] == [{"sex": "", "age_min": 18, "age_max": None, "low": 3.9, "high": 5.5}]
    assert (glucose["critical_low"], glucose["critical_high"]) == (2.8, 25.0)
    assert "ADA" in glucose["citation"]


def test_an_analyte_is_found_by_code_or_loinc(api, staff_a):
    api.force_authenticate(staff_a)

    by_code = api.get(url("analyte-detail", "hemoglobin"))
    by_loinc = api.get(url("analyte-detail", "718-7"))
    unknown = api.get(url("analyte-detail", "unobtainium"))

    assert by_code.json() == by_loinc.json()
    assert by_code.json()["name"] == "Hemoglobin"
    assert unknown.status_code == 404


# --- audit -----------------------------------------------------------------------------------------------------


def test_a_list_page_writes_one_audit_row_whatever_the_number_of_patients(api, staff_a, clinic_a):
    PatientFactory.create_batch(7, clinic=clinic_a)
    api.force_authenticate(staff_a)

    api.get(url("patient-list"), {"sex": "female", "page_size": 5})

    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.clinic) == ("patient.list", staff_a, clinic_a)
    assert event.detail["count"] == 7
    assert event.detail["filters"]["sex"] == "female"


def test_reading_a_patient_writes_a_view_row(api, doctor_a, patient_a):
    api.force_authenticate(doctor_a)

    api.get(patient_url("patient-detail", patient_a))

    event = AuditEvent.objects.get()
    assert (event.action, event.patient_id, event.actor) == ("patient.view", patient_a.pk, doctor_a)


@pytest.mark.parametrize(
    ("name", "action"), [("observation-list", "observation.list"), ("condition-list", "condition.list")]
)
def test_reading_a_patients_results_or_conditions_writes_one_row(api, doctor_a, results_a, name, action):
    ConditionFactory.create_batch(3, patient=results_a)
    before = AuditEvent.objects.count()
    api.force_authenticate(doctor_a)

    api.get(patient_url(name, results_a), {"ordering": "-" + ("effective_at" if "observation" in name else "code")})

    [event] = AuditEvent.objects.order_by("id")[before:]
    assert (event.action, event.patient_id, event.actor) == (action, results_a.pk, doctor_a)
    assert event.detail["count"] in (3, 6)


def test_every_write_through_the_api_writes_its_audit_row(api, doctor_a, patient_a):
    api.force_authenticate(doctor_a)
    single = {"analyte": "glucose", "value": 5, "unit": "mmol/L", "effective_at": WHEN.isoformat()}

    api.post(url("patient-list"), new_patient(), format="json")
    api.patch(patient_url("patient-detail", patient_a), {"phone": "555"}, format="json")
    api.post(patient_url("observation-list", patient_a), single, format="json")
    condition = api.post(patient_url("condition-list", patient_a), {"code": "D50", "display": "A"}, format="json")
    api.patch(url("condition-detail", patient_a.pk, condition.json()["id"]), {"note": "n"}, format="json")

    assert audit_actions() == [
        "patient.create",
        "patient.update",
        "observation.create",
        "condition.create",
        "condition.update",
    ]
    assert AuditEvent.objects.get(action="patient.update").detail == {"changed": ["phone"]}


# --- query counts ----------------------------------------------------------------------------------------------


def count_queries(api, target):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(target)
    assert response.status_code == 200
    return len(queries)


@pytest.fixture
def many_results(patient_a, staff_a):
    """Fills the patient's record with `n` results and `n` conditions."""

    def fill(n):
        Observation.objects.filter(patient=patient_a).delete()
        Condition.objects.filter(patient=patient_a).delete()
        for day in range(n):
            record(patient_a, staff_a, when=WHEN - datetime.timedelta(days=day), glucose=5.0)
        ConditionFactory.create_batch(n, patient=patient_a, recorded_by=staff_a)

    return fill


def expected_queries(reads):
    """The reads of one list call, plus its audit row (`audit_write_queries`). Authentication is forced, so no
    session or token lookup."""
    return reads + audit_write_queries()


PATIENT_LIST_READS = 2  # count, page
NESTED_LIST_READS = 3  # the scoped patient, count, page (the analyte or the recorder joined)


def test_the_patient_list_runs_a_constant_number_of_queries(api, staff_a, clinic_a, django_assert_num_queries):
    api.force_authenticate(staff_a)
    PatientFactory.create_batch(3, clinic=clinic_a)
    with_3 = count_queries(api, url("patient-list"))
    PatientFactory.create_batch(27, clinic=clinic_a)

    with django_assert_num_queries(expected_queries(PATIENT_LIST_READS)):
        response = api.get(url("patient-list"))

    assert len(response.json()["results"]) == 30
    assert with_3 == expected_queries(PATIENT_LIST_READS)


@pytest.mark.parametrize("name", ["observation-list", "condition-list"])
def test_a_patients_lists_run_a_constant_number_of_queries(
    api, staff_a, patient_a, many_results, name, django_assert_num_queries
):
    api.force_authenticate(staff_a)
    target = patient_url(name, patient_a)
    many_results(3)
    with_3 = count_queries(api, target)
    many_results(30)

    with django_assert_num_queries(expected_queries(NESTED_LIST_READS)):
        response = api.get(target)

    assert len(response.json()["results"]) == 30
    assert with_3 == expected_queries(NESTED_LIST_READS)


def test_the_analyte_catalog_is_served_from_memory(api, staff_a, django_assert_num_queries):
    api.force_authenticate(staff_a)
    catalog()

    with django_assert_num_queries(0):
        api.get(url("analyte-list"))


# --- schema and documentation ----------------------------------------------------------------------------------


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = target.read_text()
    for path in ["/api/v1/patients/", "/api/v1/patients/{patient_pk}/observations/", "/api/v1/analytes/{code}/"]:
        assert f"{path}:" in schema


def test_the_schema_is_served_to_signed_in_users_only(api, staff_a):
    assert api.get("/api/schema/").status_code == 401

    api.force_authenticate(staff_a)
    response = api.get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/patients/" in response.content


def test_swagger_ui_renders_from_local_static_files_only(client, staff_a):
    assert client.get(reverse("api-docs")).status_code in (302, 401)
    client.force_login(staff_a)

    response = client.get(reverse("api-docs"))

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r"https?://", html) == []
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert assets
    assert all(finders.find(asset) for asset in assets)
    # The start-up script is a file of its own (the Content-Security-Policy allows no inline script).
    assert "<script>" not in html
    start_up = client.get(reverse("api-docs"), {"script": ""})
    assert start_up["Content-Type"].startswith("application/javascript")
    assert reverse("api-schema") in start_up.content.decode()
