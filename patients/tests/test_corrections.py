"""Correcting a result, or withdrawing it as entered in error: the old value kept and shown struck through, the
reason required and audited, and nothing that read the wrong value left standing (flags, banner, risk, advice)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from clinic.models import AuditEvent
from patients.models import Observation, ObservationStatus, Sex
from patients.selectors import (
    clinical_records,
    latest_by_panel,
    observation_frame_for_patients,
    observation_series,
    observations_apart,
    patient_results,
)
from patients.services import ObservationInput, critical_results_acknowledge, observation_amend, observations_record
from patients.tests.factories import PatientFactory
from predictions.models import Prediction
from recommendations.models import Recommendation

WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
EARLIER = WHEN - datetime.timedelta(days=30)

pytestmark = pytest.mark.hazard("H13", "A result corrected or withdrawn as entered in error")


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a, given_name="Adam", family_name="Stone", mrn="A-100", sex=Sex.MALE)


def record(patient, by, when=WHEN, **values):
    entries = [ObservationInput(code, value, "mmol/L") for code, value in values.items()]
    return observations_record(patient=patient, by=by, entries=entries, effective_at=when)


def amend_url(patient, observation):
    return reverse("patients:observation_amend", args=[patient.pk, observation.pk])


def detail(client, patient) -> str:
    return client.get(reverse("patients:detail", args=[patient.pk])).content.decode()


def test_staff_correct_a_mistyped_potassium_and_the_page_shows_the_new_value_and_the_old_one_struck_through(
    client, staff_a, patient_a, django_capture_on_commit_callbacks
):
    [wrong] = record(patient_a, staff_a, potassium=6.9)
    client.force_login(staff_a)
    assert "not yet acknowledged" in detail(client, patient_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            amend_url(patient_a, wrong),
            {"action": "correct", "value": "4.1", "unit": "mmol/L", "reason": "typed 6.9 for 4.1"},
            follow=True,
        )

    assert [str(m) for m in response.context["messages"]] == [
        "Potassium 6.9 mmol/L corrected to 4.1 mmol/L. The risk and advice are being computed again."
    ]
    wrong.refresh_from_db()
    assert (wrong.status, wrong.amend_reason, wrong.amended_by) == (
        ObservationStatus.CORRECTED,
        "typed 6.9 for 4.1",
        staff_a,
    )
    correction = wrong.replaced_by
    assert (correction.value, correction.interpretation, correction.effective_at) == (4.1, "N", WHEN)
    assert list(Observation.objects.filter(patient=patient_a)) == [correction]
    html = detail(client, patient_a)
    assert "critical-results" not in html  # the banner read the wrong value
    amended = html.split('data-testid="amended-results"')[1].split("</section>")[0]
    assert "<del>6.9 mmol/L</del>" in amended
    assert "4.1 mmol/L" in amended
    assert "typed 6.9 for 4.1" in amended
    event = AuditEvent.objects.get(action="observation.correct")
    assert (event.actor, event.patient_id) == (staff_a, patient_a.pk)
    assert event.detail["old"] == {"value": 6.9, "unit": "mmol/L"}
    assert event.detail["new"] == {"value": 4.1, "unit": "mmol/L"}
    assert event.detail["reason"] == "typed 6.9 for 4.1"


def test_a_withdrawn_result_is_read_by_nothing_and_the_earlier_value_is_the_latest_again(
    client, staff_a, patient_a, django_capture_on_commit_callbacks
):
    record(patient_a, staff_a, when=EARLIER, potassium=4.4)
    [wrong] = record(patient_a, staff_a, potassium=7.2)

    with django_capture_on_commit_callbacks(execute=True):
        assert observation_amend(observation=wrong, by=staff_a, reason="belongs to another patient") is None

    wrong.refresh_from_db()
    assert wrong.status == ObservationStatus.ENTERED_IN_ERROR
    assert wrong.replaced_by is None
    client.force_login(staff_a)
    html = detail(client, patient_a)
    assert "critical-results" not in html
    assert "entered in error" in html.split('data-testid="amended-results"')[1]
    frame = observation_frame_for_patients(patient_ids=[patient_a.pk], since=EARLIER, until=WHEN)
    assert list(frame["value"]) == [4.4]  # what the model is given
    assert clinical_records(patient_ids=[patient_a.pk], as_of=WHEN)[patient_a.pk].latest["potassium"][0] == 4.4
    assert AuditEvent.objects.filter(action="observation.entered_in_error", patient_id=patient_a.pk).count() == 1


def test_withdrawing_a_critical_result_replaces_the_advice_that_read_it(
    staff_a, patient_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [wrong] = record(patient_a, staff_a, potassium=7.2)
    first = Recommendation.objects.get(patient=patient_a)
    assert first.items.filter(advice__code="potassium_critical_urgent").exists()

    with django_capture_on_commit_callbacks(execute=True):
        observation_amend(observation=wrong, by=staff_a, reason="haemolysed sample, repeat taken")

    assert Prediction.objects.filter(patient=patient_a).count() == 2
    newest = Recommendation.objects.filter(patient=patient_a).latest("created_at", "id")
    assert newest != first
    assert not newest.items.filter(advice__code="potassium_critical_urgent").exists()
    assert not first.items.filter(status="pending").exists()  # superseded, no longer waiting for a doctor


def test_a_reason_is_required_and_an_impossible_value_is_refused_writing_nothing(client, staff_a, patient_a):
    [result] = record(patient_a, staff_a, potassium=5.0)
    client.force_login(staff_a)

    blank = client.post(amend_url(patient_a, result), {"action": "correct", "value": "4.0", "unit": "mmol/L"})
    impossible = client.post(
        amend_url(patient_a, result), {"action": "correct", "value": "40", "unit": "mmol/L", "reason": "typo"}
    )
    no_value = client.post(amend_url(patient_a, result), {"action": "correct", "unit": "mmol/L", "reason": "typo"})

    assert blank.status_code == impossible.status_code == no_value.status_code == 200
    assert "This field is required" in blank.content.decode()
    assert "outside the plausible range" in impossible.content.decode()
    assert "Enter the correct value" in no_value.content.decode()
    with pytest.raises(ValidationError, match="Say why"):
        observation_amend(observation=result, by=staff_a, reason="   ", value=4.0, unit="mmol/L")
    assert list(Observation.all_objects.filter(patient=patient_a)) == [result]
    assert Observation.objects.get().status == ObservationStatus.FINAL
    assert not AuditEvent.objects.filter(action__in=["observation.correct", "observation.entered_in_error"]).exists()


def test_a_result_is_amended_once_and_the_same_value_is_no_correction(client, staff_a, patient_a):
    [result] = record(patient_a, staff_a, potassium=5.0)
    with pytest.raises(ValidationError, match="already recorded"):
        observation_amend(observation=result, by=staff_a, reason="no change", value=5.0, unit="mmol/L")

    observation_amend(observation=result, by=staff_a, reason="entered twice")

    with pytest.raises(ValidationError, match="already entered in error"):
        observation_amend(observation=result, by=staff_a, reason="again")
    client.force_login(staff_a)
    page = client.get(amend_url(patient_a, result))
    assert page.status_code == 200
    assert "already entered in error by" in page.content.decode()
    again = client.post(amend_url(patient_a, result), {"action": "withdraw", "reason": "again"})
    assert "already entered in error" in again.content.decode()
    assert AuditEvent.objects.filter(action="observation.entered_in_error").count() == 1


def test_entering_or_importing_the_withdrawn_value_again_does_not_bring_it_back(staff_a, patient_a):
    [wrong] = record(patient_a, staff_a, potassium=7.2)
    observation_amend(observation=wrong, by=staff_a, reason="belongs to another patient")

    assert record(patient_a, staff_a, potassium=7.2) == []

    assert not Observation.objects.filter(patient=patient_a).exists()


def test_a_correction_in_another_unit_is_converted_and_flagged_for_the_patient(staff_a, patient_a):
    [glucose] = observations_record(
        patient=patient_a, by=staff_a, entries=[ObservationInput("glucose", 1.3, "mmol/L")], effective_at=WHEN
    )

    correction = observation_amend(observation=glucose, by=staff_a, reason="mg/dL value", value=130, unit="mg/dL")

    assert correction.value == pytest.approx(130 / 18.016)
    assert (correction.entered_value, correction.entered_unit, correction.interpretation) == (130, "mg/dL", "H")


@pytest.mark.parametrize("role", ["patient_user_a", "doctor_b"])
def test_neither_a_patient_nor_another_clinic_can_open_or_post_a_correction(request, client, staff_a, patient_a, role):
    [result] = record(patient_a, staff_a, potassium=5.0)
    client.force_login(request.getfixturevalue(role))

    assert client.get(amend_url(patient_a, result)).status_code == 404
    posted = client.post(amend_url(patient_a, result), {"action": "withdraw", "reason": "x"})

    assert posted.status_code == 404
    assert Observation.objects.get().status == ObservationStatus.FINAL


def test_a_result_of_another_patient_is_not_reachable_through_this_patients_url(client, staff_a, clinic_a, patient_a):
    other = PatientFactory(clinic=clinic_a, mrn="A-200")
    [result] = record(other, staff_a, potassium=5.0)
    client.force_login(staff_a)

    assert client.get(amend_url(patient_a, result)).status_code == 404


def test_the_results_table_links_each_result_to_its_correction_for_those_who_enter_results(
    client, staff_a, doctor_a, patient_user_a, clinic_a
):
    own = PatientFactory(clinic=clinic_a, mrn="P-1", user=patient_user_a)
    [result] = record(own, staff_a, potassium=5.0)
    link = amend_url(own, result)

    client.force_login(doctor_a)
    assert link in detail(client, own)
    client.force_login(patient_user_a)
    assert link not in detail(client, own)


def _shown(observations):
    return [
        (o.pk, o.analyte.code, o.status, o.acknowledged_by, o.amended_by, o.replaced_by and o.replaced_by.value)
        for o in observations
    ]


def test_the_patient_page_reads_in_one_query_what_the_three_result_selectors_read(
    staff_a, doctor_a, patient_a, django_assert_max_num_queries
):
    [old_critical] = record(patient_a, staff_a, when=EARLIER, potassium=6.9)
    record(patient_a, staff_a, when=EARLIER, sodium=118.0)
    critical_results_acknowledge(patient=patient_a, by=doctor_a, note="called")  # both critical values above
    record(patient_a, staff_a, potassium=4.1)
    record(patient_a, staff_a, when=EARLIER - datetime.timedelta(days=1), potassium=7.2)  # waiting, behind 4.1
    record(patient_a, staff_a, when=EARLIER - datetime.timedelta(days=1), sodium=170.0)  # waiting, behind 118
    record(patient_a, staff_a, glucose=5.0)
    record(patient_a, staff_a, glucose=6.0)  # two at one time: the last entered is the latest
    [typo] = record(patient_a, staff_a, when=EARLIER, ldl=9.9)
    observation_amend(observation=typo, by=staff_a, reason="typed 9.9 for 3.3", value=3.3, unit="mmol/L")
    [wrong] = record(patient_a, staff_a, when=EARLIER, hdl=1.1)
    observation_amend(observation=wrong, by=staff_a, reason="another patient's")
    Observation.all_objects.create(
        patient=patient_a, analyte=old_critical.analyte, value=5.0, entered_value=5.0, entered_unit="mmol/L",
        effective_at=WHEN + datetime.timedelta(minutes=1), source="hl7", status=ObservationStatus.PRELIMINARY,
    )  # fmt: skip

    with django_assert_max_num_queries(2):  # the rows, and the clinicians they name
        results = patient_results(patient=patient_a)

    assert [(key, _shown(rows)) for key, _label, rows in results.by_panel] == [
        (key, _shown(rows)) for key, _label, rows in latest_by_panel(patient=patient_a)
    ]
    assert results.series == observation_series(patient=patient_a)
    apart = observations_apart(patient=patient_a)
    assert _shown(results.apart.preliminary) == _shown(apart.preliminary)
    assert _shown(results.apart.amended) == _shown(apart.amended)
    assert _shown(results.apart.critical_waiting) == _shown(apart.critical_waiting)
    assert len(results.apart.critical_waiting) == 2  # the case is there: 7.2 and 170, each behind a later value
    assert len(results.apart.amended) == 2
    assert [o.acknowledged_by for _k, _l, rows in results.by_panel for o in rows if o.analyte.code == "sodium"] == [
        doctor_a
    ]
