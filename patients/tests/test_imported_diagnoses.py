"""Labels need a doctor: imported diagnoses wait, unconfirmed, for a doctor to confirm them in bulk (the imported
diagnoses page), or for the clinic's admin to trust their source (`TrustedSource`, in the admin)."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from clinic.audit import audit_record
from clinic.models import AuditEvent, Role
from patients.models import Condition, ConditionSource, TrustedSource, VerificationStatus
from patients.services import condition_record, condition_update, imported_conditions_confirm
from patients.tests.factories import ConditionFactory, PatientFactory

URL = reverse("imports:diagnoses")


def _imported(patient, code="E11.9", said=VerificationStatus.CONFIRMED, **fields):
    """A diagnosis as the FHIR import stores one: unconfirmed here, what the file said kept."""
    stored = VerificationStatus.PROVISIONAL if said == VerificationStatus.CONFIRMED else said
    return ConditionFactory(
        patient=patient, code=code, source=ConditionSource.FHIR, verification_status=stored,
        source_verification_status=said, onset_date=datetime.date(2020, 3, 1), **fields,
    )  # fmt: skip


@pytest.fixture
def ann(clinic_a):
    return PatientFactory(clinic=clinic_a, given_name="Ann", family_name="Archer")


@pytest.fixture
def waiting(ann):
    return [_imported(ann, "E11.9"), _imported(ann, "N18.3", said=VerificationStatus.PROVISIONAL)]


# --- the page ---------------------------------------------------------------------------------------------------


def test_a_doctor_sees_the_imported_diagnoses_waiting_with_what_their_source_said(client, doctor_a, ann, waiting):
    _imported(ann, "D50.9", said=VerificationStatus.REFUTED)  # refuted by its file: nothing to confirm
    ConditionFactory(patient=ann, code="E78.5", verification_status=VerificationStatus.PROVISIONAL)  # recorded here
    client.force_login(doctor_a)

    response = client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-testid="imported-diagnosis"') == 2
    assert "Ann Archer" in html
    assert "<code>E11.9</code>" in html
    assert "2020-03-01" in html
    assert "Confirmed <span" in html  # what the source said
    assert "D50.9" not in html
    assert "E78.5" not in html
    event = AuditEvent.objects.get(action="condition.imported.list")
    assert event.detail == {"patient_ids": [ann.pk], "count": 2}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF, Role.PATIENT])
def test_other_roles_get_403_on_the_page_and_confirm_nothing(client, users_by_role, waiting, role):
    client.force_login(users_by_role[role])

    shown = client.get(URL)
    posted = client.post(URL, {"condition": [c.pk for c in waiting]})

    assert (shown.status_code, posted.status_code) == (403, 403)
    assert not Condition.objects.filter(verification_status=VerificationStatus.CONFIRMED).exists()


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_doctor_of_another_clinic_sees_none_and_gets_404_confirming_them(client, doctor_b, waiting):
    client.force_login(doctor_b)

    page = client.get(URL).content.decode()
    response = client.post(URL, {"condition": [waiting[0].pk]})

    assert 'data-testid="nothing-to-confirm"' in page
    assert response.status_code == 404
    waiting[0].refresh_from_db()
    assert waiting[0].verified_by is None
    assert not AuditEvent.objects.filter(action="condition.confirm_imported").exists()


@pytest.mark.hazard("H6", "A doctor confirms imported diagnoses in bulk; each batch is audited with its ids")
def test_a_doctor_confirms_the_ticked_diagnoses_in_one_audited_batch(client, doctor_a, ann, waiting):
    other = _imported(PatientFactory(clinic=ann.clinic), "D56.3")
    client.force_login(doctor_a)

    response = client.post(URL, {"condition": [waiting[0].pk, other.pk]}, follow=True)

    assert "Confirmed 2 diagnoses" in response.content.decode()
    confirmed = Condition.objects.filter(verification_status=VerificationStatus.CONFIRMED)
    assert set(confirmed.values_list("pk", "verified_by", "source_verification_status")) == {
        (waiting[0].pk, doctor_a.pk, "confirmed"), (other.pk, doctor_a.pk, "confirmed"),
    }  # fmt: skip
    waiting[1].refresh_from_db()
    assert (waiting[1].verification_status, waiting[1].verified_by) == (VerificationStatus.PROVISIONAL, None)
    event = AuditEvent.objects.get(action="condition.confirm_imported")
    assert (event.actor, event.clinic_id) == (doctor_a, ann.clinic_id)
    assert event.detail == {"condition_ids": sorted([waiting[0].pk, other.pk]),
                            "patient_ids": sorted([ann.pk, other.patient_id])}  # fmt: skip
    assert 'data-testid="imported-diagnosis"' in response.content.decode()  # the one left is still listed


def test_confirming_nothing_says_so(client, doctor_a, waiting):
    client.force_login(doctor_a)

    response = client.post(URL, {}, follow=True)

    assert "Nothing to confirm" in response.content.decode()
    assert not AuditEvent.objects.filter(action="condition.confirm_imported").exists()


def test_a_diagnosis_a_clinician_verified_meanwhile_is_left_as_they_set_it(doctor_a, staff_a, waiting):
    condition_update(condition=waiting[0], by=staff_a, verification_status=VerificationStatus.REFUTED)

    confirmed = imported_conditions_confirm(by=doctor_a, condition_ids=[c.pk for c in waiting])

    assert confirmed == [waiting[1]]
    waiting[0].refresh_from_db()
    assert (waiting[0].verification_status, waiting[0].verified_by) == (VerificationStatus.REFUTED, staff_a)


def test_only_a_doctor_confirms_in_bulk(staff_a, waiting):
    with pytest.raises(PermissionDenied):
        imported_conditions_confirm(by=staff_a, condition_ids=[c.pk for c in waiting])


def test_a_diagnosis_recorded_or_changed_here_names_who_verified_it(doctor_a, staff_a, ann):
    recorded = condition_record(patient=ann, by=staff_a, code="E11.9", display="Type 2 diabetes")

    condition_update(condition=recorded, by=doctor_a, verification_status=VerificationStatus.CONFIRMED)

    recorded.refresh_from_db()
    assert (recorded.source, recorded.verified_by, recorded.source_verification_status) == ("manual", doctor_a, "")


def test_the_home_page_tells_a_doctor_how_many_imported_diagnoses_wait(client, doctor_a, waiting):
    client.force_login(doctor_a)

    html = client.get(reverse("home")).content.decode()

    assert f'<a href="{URL}">2 imported diagnoses</a> await a doctor' in html


# --- trusting an import source (the admin) ------------------------------------------------------------------------

ADMIN_LIST = reverse("admin:patients_trustedsource_changelist")
ADMIN_ADD = reverse("admin:patients_trustedsource_add")


def test_a_clinic_admin_trusts_fhir_imports_of_their_clinic_audited(client, admin_a, clinic_a):
    client.force_login(admin_a)

    response = client.post(ADMIN_ADD, {"source": "fhir", "reason": "Our EHR's export, reviewed by its doctors"})

    assert response.status_code == 302
    trusted = TrustedSource.objects.get()
    assert (trusted.clinic, trusted.source, trusted.trusted_by) == (clinic_a, "fhir", admin_a)
    event = AuditEvent.objects.get(action="trusted_source.add")
    assert (event.actor, event.clinic_id, event.detail["source"]) == (admin_a, clinic_a.pk, "fhir")


def test_trusting_a_source_twice_is_refused_on_the_form(client, admin_a, clinic_a):
    TrustedSource.objects.create(clinic=clinic_a, source="fhir", reason="EHR", trusted_by=admin_a)
    client.force_login(admin_a)

    response = client.post(ADMIN_ADD, {"source": "fhir", "reason": "again"})

    assert response.status_code == 200
    assert "trusts this source already" in response.content.decode()
    assert TrustedSource.objects.count() == 1


def test_a_clinic_admin_stops_trusting_a_source_audited(client, admin_a, clinic_a):
    reason = "Our own EHR export, checked by Dr A"
    trusted = TrustedSource.objects.create(clinic=clinic_a, source="fhir", reason=reason, trusted_by=admin_a)
    client.force_login(admin_a)

    client.post(reverse("admin:patients_trustedsource_delete", args=[trusted.pk]), {"post": "yes"})

    assert not TrustedSource.objects.exists()
    assert AuditEvent.objects.get(action="trusted_source.remove").detail == {"source": "fhir"}


def test_another_clinics_admin_does_not_see_or_delete_the_trust(client, admin_a, admin_b, clinic_a):
    reason = "Our own EHR export, checked by Dr A"
    trusted = TrustedSource.objects.create(clinic=clinic_a, source="fhir", reason=reason, trusted_by=admin_a)
    client.force_login(admin_b)

    listed = client.get(ADMIN_LIST).content.decode()
    deleted = client.post(reverse("admin:patients_trustedsource_delete", args=[trusted.pk]), {"post": "yes"})

    assert "checked by Dr A" not in listed
    assert deleted.status_code == 404
    assert TrustedSource.objects.exists()


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.STAFF, Role.PATIENT])
def test_other_roles_cannot_trust_a_source(client, users_by_role, role):
    client.force_login(users_by_role[role])

    response = client.post(ADMIN_ADD, {"source": "fhir", "reason": "mine"})

    assert response.status_code in (302, 403)  # the admin sends non-staff users to its login page
    assert not TrustedSource.objects.exists()


# --- migration 0012: conditions already stored ---------------------------------------------------------------------

BEFORE_0012 = ("patients", "0011_observation_corrections")
MIGRATION_0012 = ("patients", "0012_labels_need_a_doctor")


@pytest.fixture
def before_0012(transactional_db):
    """The schema before conditions knew their source: its models (apps) to store conditions with. The latest schema
    is restored afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE_0012])
    yield executor.loader.project_state([BEFORE_0012]).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_sorts_stored_conditions_by_source_and_unconfirms_what_an_import_confirmed(
    before_0012, clinic_a, doctor_a
):
    old = before_0012
    patient = old.get_model("patients", "Patient").objects.create(
        clinic_id=clinic_a.pk, mrn="M-1", given_name="Ann", family_name="Lee", birth_date=datetime.date(1970, 1, 1),
        sex="female",
    )  # fmt: skip
    seeded = old.get_model("patients", "Patient").objects.create(
        clinic_id=clinic_a.pk, mrn="M-2", given_name="Bo", family_name="Demo", birth_date=datetime.date(1970, 1, 1),
        sex="male",
    )  # fmt: skip
    old.get_model("patients", "Observation").objects.create(
        patient_id=seeded.pk, analyte_id=old.get_model("patients", "Analyte").objects.first().pk, value=1.0,
        entered_value=1.0, entered_unit="x", effective_at=timezone.now(), source="demo",
    )  # fmt: skip
    conditions = old.get_model("patients", "Condition").objects

    def condition(patient_id, code, by=None):
        return conditions.create(patient_id=patient_id, code=code, display=code, verification_status="confirmed",
                                 recorded_by_id=by)  # fmt: skip

    demo = condition(seeded.pk, "E11.9")
    portal = condition(patient.pk, "N18.3", by=doctor_a.pk)
    imported = condition(patient.pk, "E78.5", by=doctor_a.pk)
    reviewed = condition(patient.pk, "D50.9", by=doctor_a.pk)
    audit_record(actor=doctor_a, action="fhir.import", target=clinic_a,
                 detail={"conditions_created": 2, "patient_ids": [patient.pk]})  # fmt: skip
    conditions.filter(pk=portal.pk).update(recorded_at=timezone.now() - datetime.timedelta(days=1))  # long before
    audit_record(
        actor=doctor_a, action="condition.update", target=reviewed, detail={"changed": ["verification_status"]}
    )

    executor = MigrationExecutor(connection)
    executor.migrate([MIGRATION_0012])
    migrated = executor.loader.project_state([MIGRATION_0012]).apps.get_model("patients", "Condition")

    stored = {
        c.pk: (c.source, c.verification_status, c.source_verification_status, c.verified_by_id)
        for c in migrated.objects.all()
    }
    assert stored == {
        demo.pk: ("demo", "confirmed", "", None),
        portal.pk: ("manual", "confirmed", "", None),
        imported.pk: ("fhir", "provisional", "confirmed", None),
        reviewed.pk: ("fhir", "confirmed", "", doctor_a.pk),
    }
