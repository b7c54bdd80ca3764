"""What every page shares: the skip link, where the user is in the navigation, the icon, the 403 page, the admin's
labels. Small things an axe-core run or a screen reader user notices (issue 32)."""

import pytest
from django.urls import reverse

from clinic.models import AuditEvent
from clinic.navigation import navigation_for
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_every_page_starts_with_a_link_that_skips_to_its_main_content(client, doctor_a):
    client.force_login(doctor_a)

    html = client.get(reverse("home")).content.decode()

    assert html.index('href="#content"') < html.index("<nav")
    assert '<main class="container py-4" id="content"' in html


def test_the_navigation_marks_the_section_of_the_page_as_current_also_on_a_patients_own_page(doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a)

    current = {
        path: [item["label"] for item in navigation_for(doctor_a, path) if item["current"]]
        for path in ["/", reverse("patients:list"), reverse("patients:detail", args=[patient.pk]),
                     reverse("patients:dashboard"), reverse("imports:job_list")]
    }  # fmt: skip

    assert current == {
        "/": ["Home"],
        reverse("patients:list"): ["Patients"],
        reverse("patients:detail", args=[patient.pk]): ["Patients"],
        reverse("patients:dashboard"): ["Population"],  # the longer match, not "Patients"
        reverse("imports:job_list"): ["Import results"],
    }


def test_the_current_navigation_link_says_so_to_screen_readers(client, doctor_a):
    client.force_login(doctor_a)

    html = client.get(reverse("patients:list")).content.decode()

    assert html.count('aria-current="page"') == 1
    assert f'class="nav-link active" aria-current="page" href="{reverse("patients:list")}"' in html


def test_the_favicon_address_leads_to_the_icon_and_writes_no_audit_row(client, doctor_a):
    client.force_login(doctor_a)

    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"].endswith("img/favicon.svg")
    assert not AuditEvent.objects.filter(action="access.denied").exists()


def test_admin_pages_link_the_icon_too(client, admin_a):
    client.force_login(admin_a)

    html = client.get(reverse("admin:index")).content.decode()

    assert 'rel="icon"' in html
    assert "css/admin.css" in html


def test_a_page_above_the_users_role_answers_403_in_the_sites_layout(client, patient_user_a):
    client.force_login(patient_user_a)

    response = client.get(reverse("patients:list"))

    html = response.content.decode()
    assert response.status_code == 403
    assert 'data-testid="main-nav"' in html  # the site's navigation, so the user can go on from here
    assert "You are not allowed to open this page" in html
    assert "ask your clinic's administrator" in html


def test_the_model_training_app_has_a_readable_name_in_the_admin(client, admin_a):
    client.force_login(admin_a)

    html = client.get(reverse("admin:mltraining_trainingrun_changelist")).content.decode()

    assert "Model training" in html
    assert "Mltraining" not in html


def test_the_audit_trails_patient_filter_input_has_a_label(client, admin_a):
    client.force_login(admin_a)

    html = client.get(reverse("admin:clinic_auditevent_changelist")).content.decode()

    assert '<label for="filter-patient_id" class="visually-hidden">' in html
    assert 'id="filter-patient_id" name="patient_id"' in html


def test_every_column_of_the_review_queue_has_a_header_text(client, doctor_a):
    from recommendations.generation import recommendations_generate
    from recommendations.tests.factories import prediction_for

    patient = PatientFactory(clinic=doctor_a.clinic)
    recommendations_generate(predictions=[prediction_for(patient, hba1c=7.3)], clinic_id=doctor_a.clinic_id)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:queue")).content.decode()

    assert '<th scope="col"></th>' not in html
    assert '<span class="visually-hidden">Action</span>' in html
