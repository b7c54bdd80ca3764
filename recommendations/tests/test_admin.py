"""Advice in the Django admin: read-only, scoped to the admin's clinic, and "Rebuild ranker now"."""

import pytest
from django.urls import reverse

from patients.tests.factories import PatientFactory
from recommendations import services
from recommendations.generation import recommendations_generate
from recommendations.models import RankerSnapshot
from recommendations.tests.factories import prediction_for


@pytest.fixture
def reviewed(clinic_a, doctor_a):
    """12 patients' advice decided by a doctor of clinic A (enough decisions for a ranker)."""
    patients = [PatientFactory(clinic=clinic_a) for _ in range(12)]
    recs = recommendations_generate(
        predictions=[prediction_for(p, hba1c=6.0, ldl=4.3, age=30 + 4 * i) for i, p in enumerate(patients)],
        clinic_id=clinic_a.pk,
    )
    for index, rec in enumerate(recs):
        for item in rec.items.all():
            if index % 3:
                services.item_approve(item=item, by=doctor_a)
            else:
                services.item_reject(item=item, by=doctor_a, reason="not_relevant")
    return recs


def test_an_admin_sees_only_the_clinics_recommendations_and_cannot_change_them(client, admin_a, admin_b, reviewed):
    client.force_login(admin_b)
    assert client.get(reverse("admin:recommendations_recommendation_change", args=[reviewed[0].pk])).status_code == 404

    client.force_login(admin_a)
    page = client.get(reverse("admin:recommendations_recommendation_change", args=[reviewed[0].pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(reverse("admin:recommendations_feedbackevent_changelist")).status_code == 200


def test_doctors_do_not_reach_the_admin(client, doctor_a, reviewed):
    client.force_login(doctor_a)
    response = client.get(reverse("admin:recommendations_recommendation_changelist"))
    assert response.status_code == 302  # to the admin login: doctors are not admin staff


def test_rebuild_ranker_now_fits_the_clinics_ranker(client, admin_a, reviewed):
    client.force_login(admin_a)
    url = reverse("admin:recommendations_rankersnapshot_rebuild")

    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)

    snapshot = RankerSnapshot.objects.get(clinic=admin_a.clinic)
    assert f"Ranker v{snapshot.version} learned from {snapshot.events} decisions." in response.content.decode()
