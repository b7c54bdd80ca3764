"""Lab connections and code maps in the admin: a clinic admin's own clinic only, every change audited."""

import pytest
from django.urls import reverse

from clinic.models import AuditEvent
from labfeed.models import HL7Message, LabCodeMap, LabConnection
from labfeed.services import hl7_message_receive
from labfeed.tests.factories import oru, potassium
from patients.catalog import catalog

pytestmark = pytest.mark.django_db


def _add(client, **fields):
    data = {
        "name": "North Lab", "sending_facility": "NORTH", "sending_application": "", "assigning_authority": "RIVERSIDE",
        "active": "on",
        "code_maps-TOTAL_FORMS": "1", "code_maps-INITIAL_FORMS": "0",
        "code_maps-MIN_NUM_FORMS": "0", "code_maps-MAX_NUM_FORMS": "1000",
        "code_maps-0-local_code": "K", "code_maps-0-local_text": "Kalium",
        "code_maps-0-analyte": str(catalog().ids["potassium"]),
        **fields,
    }  # fmt: skip
    return client.post(reverse("admin:labfeed_labconnection_add"), data)


def test_a_clinic_admin_adds_a_connection_with_a_code_map_for_their_clinic_audited(client, admin_a, clinic_a):
    client.force_login(admin_a)

    response = _add(client)

    assert response.status_code == 302
    connection = LabConnection.objects.get()
    assert (connection.clinic, connection.sending_facility) == (clinic_a, "NORTH")
    assert LabCodeMap.objects.get().local_code == "K"
    assert AuditEvent.objects.get(action="hl7.connection.create").actor == admin_a
    assert AuditEvent.objects.get(action="hl7.code_map.update").detail["added"] == ["K"]


def test_a_facility_another_connection_receives_is_refused(client, admin_a, connection):
    client.force_login(admin_a)

    response = _add(client, sending_facility=connection.sending_facility.lower())

    assert response.status_code == 200
    assert "Another connection already receives this facility and application." in response.content.decode()
    assert LabConnection.objects.count() == 1


def test_another_clinics_connection_is_a_404(client, admin_b, connection):
    client.force_login(admin_b)

    assert client.get(reverse("admin:labfeed_labconnection_change", args=[connection.pk])).status_code == 404
    assert client.get(reverse("admin:labfeed_labconnection_changelist")).context["cl"].result_count == 0


def test_staff_and_doctors_do_not_manage_connections(client, staff_a, doctor_a, connection):
    for user in (staff_a, doctor_a):
        client.force_login(user)
        response = client.get(reverse("admin:labfeed_labconnection_changelist"))
        assert response.status_code in (302, 403)


def test_the_message_log_is_read_only_scoped_and_audited(client, admin_a, admin_b, connection, patient):
    hl7_message_receive(raw=oru(potassium()))
    message = HL7Message.objects.get()
    client.force_login(admin_a)

    page = client.get(reverse("admin:labfeed_hl7message_change", args=[message.pk]))

    assert page.status_code == 200
    assert AuditEvent.objects.filter(action="hl7.message.view", actor=admin_a).count() == 1
    assert client.post(reverse("admin:labfeed_hl7message_delete", args=[message.pk])).status_code == 403
    client.force_login(admin_b)
    assert client.get(reverse("admin:labfeed_hl7message_change", args=[message.pk])).status_code == 404
