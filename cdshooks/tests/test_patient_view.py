"""patient-view: what an EHR's clinician sees of a patient when the chart opens."""

from __future__ import annotations

import pytest

from cdshooks.tests.conftest import MRN_SYSTEM, patient_view_body
from clinic.models import AuditEvent
from patients.models import Observation, Patient
from patients.tests.factories import PatientFactory
from recommendations import services as recommendation_services
from recommendations.generation import recommendations_generate
from recommendations.models import ItemStatus
from recommendations.tests.factories import prediction_for

PATH = "/cds-services/patient-view"


@pytest.fixture
def patient(clinic_a):
    return PatientFactory(clinic=clinic_a, mrn="RV-1042", sex="male")


@pytest.fixture
def advice(patient, doctor_a):
    """Advice with a critical potassium item left pending, one item approved by a doctor, one left pending."""
    prediction = prediction_for(patient, potassium=6.9, hba1c=7.4, ldl=5.3, sex="male", risk_level="high",
                                probabilities={"healthy": 0.3, "diabetes": 0.6, "ckd": 0.1})  # fmt: skip
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)
    items = list(rec.items.select_related("advice").order_by("position"))
    critical = [i for i in items if i.pinned and not i.is_headline]
    other = next(i for i in items if not i.pinned and not i.is_headline)
    recommendation_services.item_approve(item=other, by=doctor_a)
    return {"critical": critical, "approved": other, "recommendation": rec}


def test_discovery_lists_patient_view_with_its_prefetch_templates(client):
    response = client.get("/cds-services")

    assert response.status_code == 200
    [service] = response.json()["services"]
    assert (service["hook"], service["id"]) == ("patient-view", "patient-view")
    assert service["prefetch"] == {
        "patient": "Patient/{{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&category=laboratory&_sort=-date&_count=100",
        "conditions": "Condition?patient={{context.patientId}}",
    }


@pytest.mark.hazard("H6", "An EHR's risk card names its model version and provenance, and says it is not a diagnosis")
def test_a_registered_patient_gets_approved_advice_pending_critical_items_and_the_risk(call, patient, advice):
    response = call(PATH, patient_view_body(mrn="rv-1042"))  # MRNs match regardless of case

    assert response.status_code == 200
    cards = response.json()["cards"]
    by_uuid = {card.get("uuid"): card for card in cards}
    approved = by_uuid[str(advice["approved"].card_id)]
    assert approved["indicator"] == "info"
    assert approved["summary"] == advice["approved"].advice.title
    assert approved["links"][0]["url"].endswith(f"/patients/{patient.pk}/")
    assert {r["code"] for r in approved["overrideReasons"]} >= {"not_relevant", "already_addressed"}
    [critical_item] = advice["critical"]
    critical = by_uuid[str(critical_item.card_id)]
    assert critical["indicator"] == "critical"
    assert "awaiting review since" in critical["summary"]
    assert "6.9" in critical["detail"]
    [risk] = [card for card in cards if "uuid" not in card]
    assert risk["summary"].startswith("Risk high")
    assert "model v" in risk["summary"]
    assert "not a diagnosis" in risk["summary"]
    assert "Provenance: model v" in risk["detail"]
    assert AuditEvent.objects.filter(action="cdshooks.patient_view", patient_id=patient.pk).count() == 1


def test_pending_items_that_are_not_critical_are_not_shown(call, patient, advice):
    pending = advice["recommendation"].items.filter(status=ItemStatus.PENDING, pinned=False, is_headline=False)
    hidden = {str(item.card_id) for item in pending}

    cards = call(PATH, patient_view_body(mrn="RV-1042")).json()["cards"]

    assert hidden
    assert not hidden & {card.get("uuid") for card in cards}


def test_a_follow_up_test_comes_with_a_suggested_draft_order(call, patient, doctor_a):
    prediction = prediction_for(patient, hba1c=7.4, sex="male")
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)
    tests = [i for i in rec.items.select_related("advice") if i.advice.category == "follow_up_test"]
    assert tests, "the HbA1c rule asks for a confirming test"
    recommendation_services.item_approve(item=tests[0], by=doctor_a)

    cards = call(PATH, patient_view_body(mrn="RV-1042")).json()["cards"]

    [card] = [c for c in cards if c.get("uuid") == str(tests[0].card_id)]
    assert card["selectionBehavior"] == "at-most-one"
    [action] = card["suggestions"][0]["actions"]
    assert (action["type"], action["resource"]["resourceType"]) == ("create", "ServiceRequest")
    assert action["resource"]["subject"]["reference"] == "Patient/ehr-pt-5521"


@pytest.mark.hazard("H12", "An EHR asking about another clinic's patient by their MRN gets none of their advice")
def test_another_clinics_patient_with_the_same_mrn_is_not_shown(call, clinic_b, doctor_b):
    theirs = PatientFactory(clinic=clinic_b, mrn="RV-1042")
    prediction = prediction_for(theirs, potassium=6.9)
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_b.pk)
    their_cards = {str(i.card_id) for i in rec.items.all()}

    cards = call(PATH, patient_view_body(mrn="RV-1042")).json()["cards"]

    assert not their_cards & {card.get("uuid") for card in cards}
    assert all("Hillcrest" not in str(card) for card in cards)
    assert not AuditEvent.objects.filter(patient_id=theirs.pk).exists()


@pytest.mark.hazard("H1", "A critical potassium in an EHR's prefetch gives a critical card (patient not registered)")
def test_an_unknown_patient_is_judged_on_the_prefetch_without_storing_it(call, clinic_a):
    patients, observations = Patient.objects.count(), Observation.objects.count()

    response = call(PATH, patient_view_body(mrn="NOT-HERE"))

    assert response.status_code == 200
    cards = response.json()["cards"]
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert critical
    assert "6.9" in critical[0]["detail"]
    assert "not registered" in critical[0]["detail"]
    assert all("uuid" not in card for card in cards)  # nothing stored, nothing to give feedback on
    [unread] = [c for c in cards if "could not be used" in c["summary"]]
    assert "LOINC 99999-9" in unread["detail"]  # an unknown code is reported, not fatal
    assert (Patient.objects.count(), Observation.objects.count()) == (patients, observations)
    audit = AuditEvent.objects.get(action="cdshooks.patient_view")
    assert audit.detail["matched"] is False
    assert audit.detail["unknown_codes"] == 1


@pytest.mark.hazard("H13", "A preliminary result in an EHR's prefetch is listed as not final, not judged as final")
def test_a_preliminary_result_in_the_prefetch_is_listed_and_not_judged(call, clinic_a):
    body = patient_view_body(mrn="NOT-HERE")
    [potassium] = [entry["resource"] for entry in body["prefetch"]["observations"]["entry"]
                   if entry["resource"]["code"]["coding"][0]["code"] == "2823-3"]  # fmt: skip
    potassium["status"] = "preliminary"

    cards = call(PATH, body).json()["cards"]

    assert not [c for c in cards if c["indicator"] == "critical"]
    [unread] = [c for c in cards if "could not be used" in c["summary"]]
    assert "- not final, preliminary: LOINC 2823-3" in unread["detail"]


@pytest.mark.hazard("H2", "A glucose an EHR sends in mg/dL is judged in mmol/L, converted as an import converts it")
def test_values_in_other_units_are_converted_as_an_import_converts_them(call, clinic_a):
    body = patient_view_body(mrn="NOT-HERE")
    glucose = body["prefetch"]["observations"]["entry"][1]["resource"]
    glucose["code"]["coding"] = [{"system": "http://loinc.org", "code": "1558-6", "display": "Fasting glucose"}]
    glucose["valueQuantity"] = {"value": 140, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}

    cards = call(PATH, body).json()["cards"]

    assert any("7.8 mmol/L" in card.get("detail", "") for card in cards), cards


def test_a_connection_that_may_store_the_prefetch_imports_the_patient(call, connection):
    connection.may_store_prefetch = True
    connection.save()

    call(PATH, patient_view_body(mrn="NEW-77"))

    stored = Patient.objects.get(clinic=connection.clinic, mrn="NEW-77")
    assert Observation.objects.filter(patient=stored).count() == 2  # potassium and HbA1c; the unknown code is not
    assert AuditEvent.objects.get(action="cdshooks.patient_view").detail["prefetch"] == "stored"


def test_without_the_prefetched_patient_the_service_answers_412(call):
    body = patient_view_body(mrn="RV-1042")
    del body["prefetch"]["patient"]

    response = call(PATH, body)

    assert response.status_code == 412
    assert "Prefetch the Patient" in response.json()["error"]


def test_a_body_that_is_not_the_hooks_is_refused_with_400(call):
    body = patient_view_body(mrn="RV-1042")
    body["hook"] = "order-sign"

    response = call(PATH, body)

    assert response.status_code == 400
    assert "patient-view" in response.json()["error"]


def test_an_unknown_service_is_404(call):
    response = call("/cds-services/no-such-service", patient_view_body(mrn="RV-1042"))

    assert response.status_code == 404


@pytest.mark.hazard("H3", "An EHR's patient is matched only by the identifier of the connection's MRN system")
def test_the_mrn_is_read_from_the_connections_system_only(call, clinic_a):
    PatientFactory(clinic=clinic_a, mrn="A-99001")  # the value of the example's other identifier system
    body = patient_view_body(mrn="NOT-HERE")
    assert body["prefetch"]["patient"]["identifier"][0]["value"] == "A-99001"
    assert body["prefetch"]["patient"]["identifier"][1]["system"] == MRN_SYSTEM

    call(PATH, body)

    assert AuditEvent.objects.get(action="cdshooks.patient_view").detail["matched"] is False


def _observation(code: str, value: float, unit: str, when: str) -> dict:
    return {"resource": {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }}  # fmt: skip


@pytest.mark.hazard("H6", "Without the model's required inputs in the prefetch, no risk is given and the card says why")
def test_an_unknown_patient_without_the_models_inputs_gets_no_risk_and_is_told_why(call, active_model):
    cards = call(PATH, patient_view_body(mrn="NOT-HERE")).json()["cards"]

    [no_risk] = [c for c in cards if c["summary"].startswith("No risk estimate")]
    assert "haemoglobin" in no_risk["summary"]
    assert "creatinine" in no_risk["summary"]
    assert not [c for c in cards if c["summary"].startswith("Risk ")]


def test_an_unknown_patient_with_the_models_inputs_is_scored_with_its_provenance(call, active_model):
    body = patient_view_body(mrn="NOT-HERE")
    when = body["prefetch"]["observations"]["entry"][0]["resource"]["effectiveDateTime"]
    body["prefetch"]["observations"]["entry"] += [
        _observation("718-7", 131, "g/L", when),  # haemoglobin, converted to g/dL
        _observation("2160-0", 0.9, "mg/dL", when),  # creatinine, converted to umol/L
    ]

    cards = call(PATH, body).json()["cards"]

    [risk] = [c for c in cards if c["summary"].startswith("Risk ")]
    assert f"model v{active_model.version}" in risk["summary"]
    assert "not a diagnosis" in risk["summary"]
    assert "Provenance" in risk["detail"]
    assert "links" not in risk  # no patient page: the patient is not registered here
