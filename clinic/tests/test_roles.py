import pytest

from clinic import roles
from clinic.models import Role

CAPABILITIES = {
    # capability: roles that have it
    roles.can_view_patients: {Role.ADMIN, Role.DOCTOR, Role.STAFF},
    roles.can_enter_results: {Role.ADMIN, Role.DOCTOR, Role.STAFF},
    roles.can_review_advice: {Role.DOCTOR},
    roles.can_acknowledge_critical_results: {Role.DOCTOR},
    roles.can_manage_clinic: {Role.ADMIN},
    roles.can_read_audit: {Role.ADMIN},
    roles.is_patient: {Role.PATIENT},
}


@pytest.mark.parametrize("capability", list(CAPABILITIES), ids=lambda f: f.__name__)
def test_each_capability_belongs_to_exactly_its_roles(users_by_role, capability):
    granted = {role for role, user in users_by_role.items() if capability(user)}

    assert granted == CAPABILITIES[capability]


def test_a_deactivated_user_has_no_capability(doctor_a):
    doctor_a.is_active = False

    assert not any(capability(doctor_a) for capability in CAPABILITIES)


def test_staff_cannot_review_advice(staff_a):
    assert not roles.can_review_advice(staff_a)
