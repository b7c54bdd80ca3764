"""A clinic's time zone: set by its admin, pages show times in it, the API stays in UTC."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent
from clinic.tests.factories import ClinicFactory
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory

TAKEN = datetime.datetime(2026, 6, 9, 22, 30, tzinfo=datetime.UTC)  # 08:30 the next morning in Brisbane


@pytest.fixture
def glucose_result(clinic_a, staff_a):
    patient = PatientFactory(clinic=clinic_a)
    observations_record(
        patient=patient, by=staff_a, entries=[ObservationInput("glucose", 5.2, "mmol/L")], effective_at=TAKEN
    )
    return patient


def _clinic_in(clinic, zone: str) -> None:
    clinic.time_zone = zone
    clinic.save(update_fields=["time_zone"])


def test_a_new_clinic_is_in_the_platforms_time_zone(db, settings):
    settings.TIME_ZONE = "Europe/Lisbon"

    assert ClinicFactory().time_zone == "Europe/Lisbon"


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "UTC+10", "../../etc/passwd", ""])
def test_a_name_that_is_not_an_iana_time_zone_is_refused(clinic_a, name):
    clinic_a.time_zone = name

    with pytest.raises(ValidationError) as refused:
        clinic_a.full_clean()

    assert "time_zone" in refused.value.message_dict


def test_a_clinic_admin_sets_their_clinics_time_zone_in_the_admin_audited(client, admin_a, clinic_a):
    client.force_login(admin_a)
    url = reverse("admin:clinic_clinic_change", args=[clinic_a.pk])
    form = {"escalation_minutes": "30", "escalation_contact_minutes": "30", "time_zone": "Australia/Brisbane"}

    assert 'value="Australia/Brisbane"' in client.get(url).content.decode()  # picked from a list
    response = client.post(url, form)

    assert response.status_code == 302
    clinic_a.refresh_from_db()
    assert clinic_a.time_zone == "Australia/Brisbane"
    event = AuditEvent.objects.get(action="clinic.update")
    assert event.detail["changed"] == {"time_zone": "Australia/Brisbane"}
    refused = client.post(url, {**form, "time_zone": "Mars/Olympus_Mons"})
    assert "Select a valid choice" in refused.content.decode()
    clinic_a.refresh_from_db()
    assert clinic_a.time_zone == "Australia/Brisbane"


def test_the_patient_page_shows_a_results_time_in_the_clinics_time_zone(client, doctor_a, clinic_a, glucose_result):
    client.force_login(doctor_a)
    url = reverse("patients:detail", args=[glucose_result.pk])
    assert "2026-06-09 22:30" in client.get(url).content.decode()  # the clinic in UTC, as created

    _clinic_in(clinic_a, "Australia/Brisbane")
    html = client.get(url).content.decode()

    assert "2026-06-10 08:30" in html
    assert "2026-06-09 22:30" not in html


def test_each_clinic_sees_its_own_time_zone_and_none_leaks_into_the_next_request(
    client, doctor_a, doctor_b, clinic_a, clinic_b, glucose_result
):
    _clinic_in(clinic_a, "Australia/Brisbane")
    _clinic_in(clinic_b, "America/Bogota")
    client.force_login(doctor_a)
    client.get(reverse("patients:detail", args=[glucose_result.pk]))

    assert timezone.get_current_timezone_name() == "UTC"  # deactivated after the request
    client.force_login(doctor_b)
    assert client.get(reverse("patients:detail", args=[glucose_result.pk])).status_code == 404  # not theirs


def test_the_api_answers_in_utc_whatever_the_clinics_time_zone(client, doctor_a, clinic_a, glucose_result):
    _clinic_in(clinic_a, "Australia/Brisbane")
    client.force_login(doctor_a)

    body = client.get(f"/api/v1/patients/{glucose_result.pk}/observations/").json()

    rows = body["results"] if isinstance(body, dict) else body
    assert [row["effective_at"] for row in rows] == ["2026-06-09T22:30:00Z"]
