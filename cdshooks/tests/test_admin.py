"""A clinic admin registers their clinic's EHR in the admin; others do not see it; every change is audited."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from cdshooks.models import EhrConnection
from cdshooks.tests.conftest import ISS, MRN_SYSTEM
from clinic.models import AuditEvent

ADD = reverse("admin:cdshooks_ehrconnection_add")


def _form(clinic_id: int, jwks: dict, **changes) -> dict:
    return {"clinic": clinic_id, "name": "Riverside EHR", "iss": ISS, "jwks_url": "", "jwks": json.dumps(jwks),
            "audience": "", "mrn_system": MRN_SYSTEM, "active": "on", **changes}  # fmt: skip


def test_a_clinic_admin_registers_their_ehr_for_their_own_clinic(client, admin_a, clinic_b, ehr):
    client.force_login(admin_a)

    response = client.post(ADD, _form(clinic_b.pk, ehr.jwks()))  # the clinic field is theirs, whatever is posted

    assert response.status_code == 302, response.content
    connection = EhrConnection.objects.get()
    assert connection.clinic_id == admin_a.clinic_id
    assert AuditEvent.objects.filter(action="ehr_connection.create", actor=admin_a).exists()


def test_a_private_key_or_no_key_at_all_is_refused(client, admin_a, ehr):
    client.force_login(admin_a)
    private = {"keys": [{**ehr.jwks()["keys"][0], "d": "secret"}]}

    assert "private part" in client.post(ADD, _form(admin_a.clinic_id, private)).content.decode()
    assert "Give the EHR" in client.post(ADD, _form(admin_a.clinic_id, {})).content.decode()
    assert not EhrConnection.objects.exists()


@pytest.mark.parametrize("who", ["admin_b", "doctor_a"])
def test_others_do_not_reach_a_clinics_connection(client, connection, who, request):
    client.force_login(request.getfixturevalue(who))

    response = client.get(reverse("admin:cdshooks_ehrconnection_change", args=[connection.pk]))

    assert response.status_code in (302, 403, 404)
    assert ISS not in response.content.decode()
