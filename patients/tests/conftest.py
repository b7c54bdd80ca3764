"""Fixtures of the contact tests: a patient account with its record, and its advice approved."""

import pytest

from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.services import item_approve
from recommendations.tests.factories import prediction_for


@pytest.fixture
def own_record(clinic_a, patient_user_a):
    return PatientFactory(clinic=clinic_a, user=patient_user_a, given_name="Ida", family_name="Berg", sex="male")


@pytest.fixture
def advice(own_record, doctor_a):
    """The patient's advice after a high HbA1c: each item approved, by code."""
    prediction = prediction_for(own_record, hba1c=7.2, ldl=5.2, bmi=31.0, sex="male", risk_level="high")
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=own_record.clinic_id)
    return {item.advice.code: item_approve(item=item, by=doctor_a) for item in rec.items.select_related("advice")}
