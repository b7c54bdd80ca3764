"""What each role may do, as plain functions of the user. Views, selectors and services ask these."""

from clinic.models import Role, User


def _has_role(user: User, *roles: str) -> bool:
    return user.is_authenticated and user.is_active and (user.is_superuser or user.role in roles)


def can_view_patients(user: User) -> bool:
    """See the patient registry of the clinic, results and predictions."""
    return _has_role(user, Role.ADMIN, Role.DOCTOR, Role.STAFF)


def can_enter_results(user: User) -> bool:
    """Register patients, enter or import lab results and vitals."""
    return _has_role(user, Role.ADMIN, Role.DOCTOR, Role.STAFF)


def can_handle_patient_requests(user: User) -> bool:
    """Read the questions and appointment requests patients send from the portal, take them on and answer."""
    return _has_role(user, Role.ADMIN, Role.DOCTOR, Role.STAFF)


def can_review_advice(user: User) -> bool:
    """Approve, reject or annotate recommendations; confirm diagnoses."""
    return _has_role(user, Role.DOCTOR)


def can_acknowledge_critical_results(user: User) -> bool:
    """Acknowledge a patient's results in a critical range: the doctor has seen them and takes them on."""
    return _has_role(user, Role.DOCTOR)


def can_be_on_duty(user: User) -> bool:
    """Go on or off duty: a doctor on duty is e-mailed about critical results left unacknowledged."""
    return _has_role(user, Role.DOCTOR) and user.clinic_id is not None


def can_view_dashboards(user: User) -> bool:
    """The population and review dashboards (aggregates of the clinic, no identifiers)."""
    return _has_role(user, Role.ADMIN, Role.DOCTOR)


def can_manage_clinic(user: User) -> bool:
    """Manage staff accounts, models, retraining and schedules in the admin."""
    return _has_role(user, Role.ADMIN)


def can_read_audit(user: User) -> bool:
    return _has_role(user, Role.ADMIN)


def is_patient(user: User) -> bool:
    """A patient sees only their own results and the advice a doctor approved."""
    return user.is_authenticated and user.is_active and not user.is_superuser and user.role == Role.PATIENT


def can_confirm_diagnosis(user: User) -> bool:
    """Set a condition's verification status to confirmed (it then becomes a training label)."""
    return _has_role(user, Role.DOCTOR)
