"""The standing protocols pages: access per role and clinic, signing, applying and revoking through them."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent
from patients.tests.factories import PatientFactory
from recommendations import protocols
from recommendations.generation import recommendations_generate
from recommendations.models import ItemStatus, StandingProtocol
from recommendations.tests.factories import prediction_for


def _routine(clinic, n=1):
    patients = [PatientFactory(clinic=clinic, sex="female") for _ in range(n)]
    predictions = [prediction_for(p, sex="female", systolic_bp=132.0, bmi=27.0) for p in patients]
    return recommendations_generate(predictions=predictions, clinic_id=clinic.pk)


def _form(**changes):
    today = timezone.localdate()
    return {"title": "Routine lifestyle advice", "advice": ["bp_stage1_lifestyle", "bmi_overweight_lifestyle"],
            "sex": "", "starts_on": today.isoformat(), "ends_on": (today + datetime.timedelta(days=90)).isoformat(),
            "release_waiting": "on", **changes}  # fmt: skip


@pytest.fixture
def protocol(doctor_a):
    today = timezone.localdate()
    return protocols.protocol_sign(by=doctor_a, title="Routine BP advice", advice_codes=["bp_stage1_lifestyle"],
                                   starts_on=today, ends_on=today + datetime.timedelta(days=30))  # fmt: skip


def test_the_protocols_pages_are_for_doctors(client, users_by_role):
    for role, user in users_by_role.items():
        client.force_login(user)
        for name in ("protocols", "protocol_sign"):
            response = client.get(reverse(f"recommendations:{name}"))
            assert response.status_code == (200 if role == "doctor" else 403), (role, name)


def test_a_doctor_of_another_clinic_gets_404_for_a_protocol(client, doctor_b, protocol):
    client.force_login(doctor_b)

    for name in ("protocol_revoke", "protocol_apply"):
        assert client.post(reverse(f"recommendations:{name}", args=[protocol.pk]), {"reason": "x"}).status_code == 404
    assert client.get(reverse("recommendations:protocols")).context["groups"]["current"] == []
    protocol.refresh_from_db()
    assert protocol.revoked_at is None


def test_the_queue_links_to_the_standing_protocols(client, doctor_a):
    client.force_login(doctor_a)

    response = client.get(reverse("recommendations:queue"))

    assert reverse("recommendations:protocols") in response.content.decode()


def test_signing_through_the_page_releases_what_waits_and_the_list_counts_it(client, doctor_a, clinic_a):
    _routine(clinic_a, 2)
    client.force_login(doctor_a)

    response = client.post(reverse("recommendations:protocol_sign"), _form(), follow=True)

    assert "Released 6 waiting items under it." in response.content.decode()
    [row] = response.context["groups"]["current"]
    assert (row["status"], row["protocol"].released) == ("active", 6)
    assert client.get(reverse("recommendations:queue")).context["page"].paginator.count == 0


def test_a_refused_protocol_shows_why_and_writes_nothing(client, doctor_a, clinic_a):
    _routine(clinic_a)
    client.force_login(doctor_a)
    too_long = (timezone.localdate() + datetime.timedelta(days=400)).isoformat()

    response = client.post(reverse("recommendations:protocol_sign"), _form(ends_on=too_long))

    assert response.status_code == 200
    assert "A protocol lasts at most a year" in response.content.decode()
    assert not StandingProtocol.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="protocol.").exists()


def test_the_form_does_not_offer_advice_that_can_be_moderate_or_worse(client, doctor_a):
    client.force_login(doctor_a)

    response = client.post(reverse("recommendations:protocol_sign"), _form(advice=["bp_stage2_review"]))

    assert "bp_stage2_review" not in dict(response.context["form"].fields["advice"].choices)
    assert response.context["form"].errors["advice"]
    assert not StandingProtocol.objects.exists()


def test_revoking_through_the_page_needs_a_reason(client, doctor_a, protocol):
    client.force_login(doctor_a)
    url = reverse("recommendations:protocol_revoke", args=[protocol.pk])

    refused = client.post(url, {"reason": ""}, follow=True)
    protocol.refresh_from_db()
    assert protocol.revoked_at is None
    assert "Say why the protocol is revoked." in refused.content.decode()

    revoked = client.post(url, {"reason": "Superseded by the new guideline."}, follow=True)
    [row] = revoked.context["groups"]["revoked"]
    assert row["protocol"].revoke_reason == "Superseded by the new guideline."


def test_apply_through_the_page_releases_what_waits(client, doctor_a, clinic_a, protocol):
    [rec] = _routine(clinic_a)
    client.force_login(doctor_a)

    client.post(reverse("recommendations:protocol_apply", args=[protocol.pk]))

    assert rec.items.get(advice__code="bp_stage1_lifestyle").status == ItemStatus.APPROVED


def test_the_patient_page_names_the_protocol_and_its_signer(client, clinic_a, doctor_a, patient_user_a, protocol):
    doctor_a.first_name, doctor_a.last_name = "Wei", "Chen"
    doctor_a.save()
    patient = PatientFactory(clinic=clinic_a, user=patient_user_a, sex="female")
    recommendations_generate(predictions=[prediction_for(patient, systolic_bp=132.0)], clinic_id=clinic_a.pk)
    client.force_login(patient_user_a)

    response = client.get(reverse("recommendations:mine"))

    assert "From your clinic's care protocol, approved by Dr Wei Chen" in response.content.decode()


def test_the_protocols_page_runs_the_same_queries_for_1_or_5_protocols(client, doctor_a):
    def sign(n):
        today = timezone.localdate()
        for i in range(n):
            codes = ["sleep_more", "activity_increase"]
            protocols.protocol_sign(by=doctor_a, title=f"Protocol {i}", advice_codes=codes, starts_on=today,
                                    ends_on=today + datetime.timedelta(days=30))  # fmt: skip

    client.force_login(doctor_a)
    client.get(reverse("recommendations:protocols"))  # warm up: the session's first read
    counts = []
    for n in (1, 4):  # 1, then 5
        sign(n)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("recommendations:protocols")).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]
