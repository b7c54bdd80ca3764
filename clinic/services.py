import logging

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from clinic import roles
from clinic.audit import CheckpointInvalid, audit_checkpoint, audit_record, audit_verify
from clinic.models import AuditOutcome, Clinic, Role, User

logger = logging.getLogger(__name__)


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
def user_duty_set(*, user: User, by: User, on_duty: bool) -> User:
    """A doctor goes on or off duty (their own switch; an admin's is the account's page in the admin). On duty,
    they are e-mailed about the clinic's critical results left unacknowledged, so an account without an e-mail
    address is refused rather than counted on."""
    if by.pk != user.pk or not roles.can_be_on_duty(user):
        raise PermissionDenied("Only a doctor goes on or off duty, for themselves.")
    if on_duty and not user.email:
        raise ValidationError(
            "Your account has no e-mail address, so you could not be told of a critical result: ask your clinic "
            "admin to add one. You are not on duty."
        )
    if user.on_duty != on_duty:
        user.on_duty = on_duty
        user.save(update_fields=["on_duty"])
        audit_record(actor=by, action="user.duty", target=user, detail={"on_duty": on_duty})
    return user


@transaction.atomic
def user_set_password(*, user: User, password: str, by: User | None = None) -> User:
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(actor=by, action="user.set_password", target=user)
    api_tokens_revoke_all(user=user, by=by, reason="password_change")
    return user


@transaction.atomic
def api_token_issue(*, user: User) -> tuple[AuthToken, str]:
    """A new API token for a user who has just given their password: the row (digest and expiry) and the token,
    which is shown once and stored nowhere. The user's expired tokens are purged here rather than on every request
    (clinic.authentication)."""
    user.auth_token_set.filter(expiry__lt=timezone.now()).delete()
    instance, token = AuthToken.objects.create(user=user)
    audit_record(
        actor=user, action="auth.token.issue", target=user,
        detail={"token": instance.token_key, "expiry": instance.expiry},
    )  # fmt: skip
    return instance, token


@transaction.atomic
def api_token_revoke(*, token: AuthToken, by: User) -> None:
    """Revoke one token (the API's logout with that token)."""
    token_key = token.token_key
    token.delete()
    audit_record(actor=by, action="auth.token.revoke", target=token.user, detail={"token": token_key})


@transaction.atomic
def api_tokens_revoke_all(*, user: User, by: User | None, reason: str) -> int:
    """Revoke every API token of a user: on a password change (by anyone), a portal sign-out and the API's
    logout-all. Audited only when there was something to revoke, with how many and why."""
    count, _ = user.auth_token_set.all().delete()
    if count:
        audit_record(actor=by, action="auth.token.revoke_all", target=user, detail={"reason": reason, "count": count})
    return count


def audit_verify_and_record(*, full: bool = False) -> dict[str, object]:
    """Verify the chains against the last checkpoint and record the outcome in the trail: the nightly check leaves
    its own trace. Only the rows after the checkpoint are read unless `full` (every row, with the counts)."""
    try:
        verification = audit_verify(since_checkpoint=not full)
    except CheckpointInvalid as exc:
        verification, problems = None, [str(exc)]
    else:
        problems = verification.problems
    breakage = verification.breaks[0] if verification and verification.breaks else None
    result = {
        "full": verification.full if verification else full,
        "checked": verification.checked if verification else 0,
        "broken_at": breakage.event_id if breakage else None,
        "checkpoint_problems": problems,
        "id_gaps": len(verification.gaps) if verification else 0,
    }
    if breakage:
        result["reason"] = breakage.reason
    audit_record(
        actor=None,
        action="audit.verify",
        outcome=AuditOutcome.FAILURE if breakage or problems else AuditOutcome.SUCCESS,
        detail=result,
    )
    return result


def audit_checkpoint_and_record() -> dict[str, object]:
    """Every AUDIT_CHECKPOINT_MINUTES: verify the rows since the last checkpoint and checkpoint the new head. Only a
    failure is recorded in the trail (and logged): a success every few minutes would drown the trail."""
    try:
        verification = audit_checkpoint()
    except CheckpointInvalid as exc:
        problems, breaks = [str(exc)], []
    else:
        problems, breaks = verification.problems, verification.breaks
    if not problems and not breaks:
        return {"checkpointed": True}
    result = {
        "checkpointed": False,
        "checkpoint_problems": problems,
        "broken_at": breaks[0].event_id if breaks else None,
        "reason": breaks[0].reason if breaks else "",
    }
    logger.error("Audit checkpoint refused, the trail does not check out: %s", result)
    audit_record(actor=None, action="audit.checkpoint", outcome=AuditOutcome.FAILURE, detail=result)
    return result
