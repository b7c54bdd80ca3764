from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from clinic.audit import audit_first_break, audit_record
from clinic.models import AuditEvent, AuditOutcome, Clinic, Role, User


@transaction.atomic
def clinic_create(*, name: str, slug: str, by: User | None = None, is_demo: bool = False) -> Clinic:
    """`is_demo` only for a clinic of synthetic patients (the demo, benchmarks): its models may be trained on them."""
    clinic = Clinic(name=name, slug=slug, is_demo=is_demo)
    clinic.full_clean()
    clinic.save()
    audit_record(actor=by, action="clinic.create", target=clinic, detail={"is_demo": is_demo} if is_demo else None)
    return clinic


@transaction.atomic
def user_create(
    *,
    clinic: Clinic,
    username: str,
    password: str,
    role: str = Role.STAFF,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    by: User | None = None,
) -> User:
    """Create an account in a clinic. Clinic admins get Django admin access; nobody else does."""
    user = User(
        clinic=clinic,
        username=username,
        role=role,
        first_name=first_name,
        last_name=last_name,
        email=email,
        is_staff=role == Role.ADMIN,
    )
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    audit_record(actor=by, action="user.create", target=user, detail={"role": role})
    return user


@transaction.atomic
def user_set_password(*, user: User, password: str, by: User | None = None) -> User:
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(actor=by, action="user.set_password", target=user)
    return user


def audit_verify_and_record() -> dict[str, object]:
    """Verify the whole chain and record the outcome in it: the nightly check leaves its own trace."""
    checked = AuditEvent.objects.count()
    breakage = audit_first_break()
    result = {"checked": checked, "broken_at": breakage.event_id if breakage else None}
    if breakage:
        result["reason"] = breakage.reason
    audit_record(
        actor=None,
        action="audit.verify",
        outcome=AuditOutcome.FAILURE if breakage else AuditOutcome.SUCCESS,
        detail=result,
    )
    return result
