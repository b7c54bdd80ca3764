"""Standing protocols: who signs, what they may name, whom and when they cover, and what a release writes."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from clinic.models import AuditEvent
from patients.tests.factories import PatientFactory
from recommendations import protocols, selectors
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, ItemStatus, Recommendation, StandingProtocol
from recommendations.tests.factories import prediction_for

LIFESTYLE = ["bp_stage1_lifestyle", "bmi_overweight_lifestyle"]
# Systolic 132 mmHg (stage 1) and BMI 27 (overweight): two low-severity items under a "lifestyle changes" headline.
ROUTINE = {"systolic_bp": 132.0, "bmi": 27.0}


def _today():
    return timezone.localdate()


def _sign(doctor, codes=LIFESTYLE, **changes):
    fields = {"title": "Lifestyle advice for raised BP and weight", "advice_codes": codes, "starts_on": _today(),
              "ends_on": _today() + datetime.timedelta(days=180), **changes}  # fmt: skip
    return protocols.protocol_sign(by=doctor, **fields)


def _generate(clinic, *, sex="female", age=45, risk_level="low", user=None, **inputs):
    patient = PatientFactory(clinic=clinic, sex=sex, user=user)
    prediction = prediction_for(patient, sex=sex, age=age, risk_level=risk_level, **{**ROUTINE, **inputs})
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic.pk)
    rec.refresh_from_db()
    return rec


def _statuses(rec):
    return dict(rec.items.values_list("advice__code", "status"))


# --- signing ----------------------------------------------------------------------------------------------------


def test_a_doctor_signs_a_protocol_for_their_clinic_and_the_signature_is_audited(doctor_a):
    protocol = _sign(doctor_a)

    assert (protocol.clinic_id, protocol.signed_by) == (doctor_a.clinic_id, doctor_a)
    assert sorted(protocol.advice.values_list("code", flat=True)) == sorted(LIFESTYLE)
    event = AuditEvent.objects.get(action="protocol.sign")
    assert (event.actor, event.object_id, sorted(event.detail["advice"])) == (doctor_a, str(protocol.pk),
                                                                              sorted(LIFESTYLE))  # fmt: skip


@pytest.mark.parametrize("role", ["staff_a", "admin_a", "patient_user_a"])
def test_only_doctors_sign_protocols(role, request):
    with pytest.raises(PermissionDenied):
        _sign(request.getfixturevalue(role))
    assert not StandingProtocol.objects.exists()


@pytest.mark.hazard("H5", "A protocol naming advice that can be moderate or worse is refused whole")
@pytest.mark.parametrize("code", ["bp_stage2_review", "result_out_of_date_repeat", "lifestyle_changes",
                                  "troponin_urgent", "consult_professional"])  # fmt: skip
def test_a_protocol_cannot_name_advice_that_can_be_moderate_or_worse(doctor_a, code):
    with pytest.raises(ValidationError, match="never more than low severity") as raised:
        _sign(doctor_a, codes=[*LIFESTYLE, code])

    assert code in str(raised.value)
    assert not StandingProtocol.objects.exists()
    assert not AuditEvent.objects.filter(action="protocol.sign").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_on": None}, "ends_on"),
        ({"ends_on": _today() + datetime.timedelta(days=400)}, "ends_on"),
        ({"starts_on": _today() - datetime.timedelta(days=1)}, "starts_on"),
        ({"starts_on": _today() + datetime.timedelta(days=10), "ends_on": _today()}, "ends_on"),
        ({"min_age": 70, "max_age": 40}, "max_age"),
        ({"sex": "other"}, "sex"),
        ({"title": "  "}, "title"),
        ({"codes": []}, "advice"),
    ],
)
def test_a_protocol_needs_an_end_within_a_year_a_sane_scope_and_a_title(doctor_a, changes, field):
    with pytest.raises(ValidationError) as raised:
        _sign(doctor_a, **changes)

    assert field in raised.value.message_dict
    assert not StandingProtocol.objects.exists()


# --- releasing on generation -------------------------------------------------------------------------------------


@pytest.mark.hazard("H5", "Advice released under a protocol is audited per patient, approved with no reviewer")
def test_new_routine_advice_is_released_under_an_active_protocol_and_leaves_the_queue(clinic_a, doctor_a):
    protocol = _sign(doctor_a)

    rec = _generate(clinic_a)

    assert _statuses(rec) == {"bp_stage1_lifestyle": "approved", "bmi_overweight_lifestyle": "approved",
                              "lifestyle_changes": "approved"}  # fmt: skip
    assert set(rec.items.values_list("protocol", "reviewed_by")) == {(protocol.pk, None)}
    assert rec.pending == 0
    assert list(selectors.review_queue_for(user=doctor_a)) == []
    event = AuditEvent.objects.get(action=protocols.RELEASE_ACTION)
    assert (event.patient_id, event.actor, event.actor_username) == (rec.patient_id, None, "standing-protocol")
    assert (event.detail["protocol"], event.detail["signed_by"]) == (protocol.pk, "doctor_a")
    assert sorted(event.detail["advice"]) == sorted([*LIFESTYLE, "lifestyle_changes"])


def test_a_release_is_no_clinician_decision_and_writes_no_feedback(clinic_a, doctor_a):
    _sign(doctor_a)

    _generate(clinic_a)

    assert not FeedbackEvent.objects.exists()


def test_only_the_named_items_are_released_and_the_rest_waits_for_a_doctor(clinic_a, doctor_a):
    _sign(doctor_a, codes=["bp_stage1_lifestyle"])

    rec = _generate(clinic_a)

    assert _statuses(rec) == {"bp_stage1_lifestyle": "approved", "bmi_overweight_lifestyle": "pending",
                              "lifestyle_changes": "pending"}  # fmt: skip
    assert rec.pending == 2
    assert [r.pk for r in selectors.review_queue_for(user=doctor_a)] == [rec.pk]


def test_nothing_is_released_beside_a_moderate_finding_still_waiting_for_a_doctor(clinic_a, doctor_a):
    _sign(doctor_a)

    rec = _generate(clinic_a, alt=90.0)  # ALT work-up: moderate, not named; the headline is moderate too

    statuses = _statuses(rec)
    assert statuses["bp_stage1_lifestyle"] == statuses["alt_elevated_work_up"] == ItemStatus.PENDING
    assert set(statuses.values()) == {ItemStatus.PENDING}
    assert rec.pending == len(statuses)
    assert not AuditEvent.objects.filter(action=protocols.RELEASE_ACTION).exists()


@pytest.mark.hazard("H1", "No item of a recommendation carrying a critical finding is released under a protocol")
def test_nothing_is_released_from_advice_that_carries_a_critical_item(clinic_a, doctor_a):
    _sign(doctor_a)

    rec = _generate(clinic_a, potassium=7.0)

    assert set(_statuses(rec).values()) == {ItemStatus.PENDING}
    assert not AuditEvent.objects.filter(action=protocols.RELEASE_ACTION).exists()


@pytest.mark.parametrize(
    ("scope", "patient", "released"),
    [
        ({"sex": "female"}, {"sex": "female"}, True),
        ({"sex": "female"}, {"sex": "male"}, False),
        ({"min_age": 40, "max_age": 64}, {"age": 64}, True),
        ({"min_age": 40, "max_age": 64}, {"age": 65}, False),
        ({"min_age": 40}, {"age": None}, False),  # an age the record cannot give is out of an age band
        ({}, {"age": None, "sex": "unknown"}, True),
    ],
)
def test_a_protocol_releases_only_to_the_patients_in_its_scope(clinic_a, doctor_a, scope, patient, released):
    _sign(doctor_a, **scope)

    rec = _generate(clinic_a, **patient)

    assert (_statuses(rec)["bp_stage1_lifestyle"] == "approved") is released


def test_a_protocol_of_another_clinic_releases_nothing_here(clinic_a, doctor_b):
    _sign(doctor_b)

    rec = _generate(clinic_a)

    assert set(_statuses(rec).values()) == {ItemStatus.PENDING}


def test_a_protocol_releases_from_its_start_day_to_its_end_day(clinic_a, doctor_a, monkeypatch):
    today = _today()
    _sign(doctor_a, starts_on=today + datetime.timedelta(days=1), ends_on=today + datetime.timedelta(days=2))
    before = _generate(clinic_a)
    monkeypatch.setattr(timezone, "localdate", lambda: today + datetime.timedelta(days=2))
    last_day = _generate(clinic_a)
    monkeypatch.setattr(timezone, "localdate", lambda: today + datetime.timedelta(days=3))
    after = _generate(clinic_a)

    assert [_statuses(rec)["bp_stage1_lifestyle"] for rec in (before, last_day, after)] == [
        "pending", "approved", "pending"]  # fmt: skip


def test_a_revoked_protocol_releases_nothing_more_but_what_it_released_stays_attributed(clinic_a, doctor_a):
    protocol = _sign(doctor_a)
    released = _generate(clinic_a)

    protocols.protocol_revoke(protocol=protocol, by=doctor_a, reason="Guideline under review.")
    later = _generate(clinic_a)

    assert set(_statuses(later).values()) == {ItemStatus.PENDING}
    assert set(released.items.values_list("status", "protocol")) == {(ItemStatus.APPROVED, protocol.pk)}
    event = AuditEvent.objects.get(action="protocol.revoke")
    assert (event.actor, event.detail["reason"]) == (doctor_a, "Guideline under review.")


def test_revoking_needs_a_reason_and_a_doctor_of_the_clinic(doctor_a, doctor_b, staff_a):
    protocol = _sign(doctor_a)

    with pytest.raises(ValidationError, match="Say why"):
        protocols.protocol_revoke(protocol=protocol, by=doctor_a, reason=" ")
    for user in (doctor_b, staff_a):
        with pytest.raises(PermissionDenied):
            protocols.protocol_revoke(protocol=protocol, by=user, reason="No.")
    protocol.refresh_from_db()
    assert protocol.revoked_at is None


# --- applying to what is waiting ------------------------------------------------------------------------------


def test_applying_a_new_protocol_to_the_waiting_queue_shrinks_it_at_once(clinic_a, doctor_a):
    routine = [_generate(clinic_a) for _ in range(3)]
    serious = _generate(clinic_a, alt=90.0)
    assert selectors.review_queue_counts(user=doctor_a)["patients"] == 4
    protocol = _sign(doctor_a)

    released = protocols.protocol_apply_waiting(protocol=protocol, by=doctor_a)

    assert released == 3 * 3  # three whole recommendations; nothing beside the ALT work-up a doctor has not seen
    assert [r.pk for r in selectors.review_queue_for(user=doctor_a)] == [serious.pk]
    waiting = serious.items.count()
    assert {r.pk: r.pending for r in Recommendation.objects.all()} == {
        **{r.pk: 0 for r in routine},
        serious.pk: waiting,
    }
    releases = AuditEvent.objects.filter(action=protocols.RELEASE_ACTION)
    assert sorted(releases.values_list("patient_id", flat=True)) == sorted(r.patient_id for r in routine)
    assert set(releases.values_list("actor", flat=True)) == {doctor_a.pk}
    assert AuditEvent.objects.get(action="protocol.apply").detail["released"] == released
    assert not FeedbackEvent.objects.exists()


def test_items_a_doctor_already_decided_are_left_alone(clinic_a, doctor_a):
    from recommendations import services

    rec = _generate(clinic_a)
    services.item_reject(item=rec.items.get(advice__code="bp_stage1_lifestyle"), by=doctor_a, reason="duplicate")
    protocol = _sign(doctor_a)

    assert protocols.protocol_apply_waiting(protocol=protocol, by=doctor_a) == 2  # BMI item, then the headline

    assert _statuses(rec)["bp_stage1_lifestyle"] == ItemStatus.REJECTED
    rec.refresh_from_db()
    assert rec.pending == 0


def test_a_doctor_of_another_clinic_cannot_apply_a_protocol(clinic_a, doctor_a, doctor_b):
    rec = _generate(clinic_a)
    protocol = _sign(doctor_a)

    with pytest.raises(PermissionDenied):
        protocols.protocol_apply_waiting(protocol=protocol, by=doctor_b)
    assert set(_statuses(rec).values()) == {ItemStatus.PENDING}


def test_a_revoked_protocol_cannot_be_applied(clinic_a, doctor_a):
    rec = _generate(clinic_a)
    protocol = _sign(doctor_a)
    protocols.protocol_revoke(protocol=protocol, by=doctor_a, reason="Signed by mistake.")

    with pytest.raises(ValidationError, match="active"):
        protocols.protocol_apply_waiting(protocol=protocol, by=doctor_a)
    assert set(_statuses(rec).values()) == {ItemStatus.PENDING}


# --- what the patient sees -----------------------------------------------------------------------------------


def test_the_patient_reads_released_advice_with_the_protocol_and_its_signer(clinic_a, doctor_a, patient_user_a):
    protocol = _sign(doctor_a)
    _generate(clinic_a, user=patient_user_a)

    _patient, advice = selectors.my_advice_read(user=patient_user_a)

    assert {item.advice.code for item in advice} == {*LIFESTYLE, "lifestyle_changes"}
    assert {item.protocol for item in advice} == {protocol}
