"""Authentication events into the audit trail. Django and django-axes announce them with signals."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from clinic.audit import audit_record
from clinic.models import AuditOutcome, User


def _account(username: str) -> User | None:
    """The account a failed attempt aimed at, so the clinic's admins see attacks on their users."""
    return User.objects.filter(username=username).first() if username else None


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs):
    audit_record(actor=user, action="auth.login")


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="auth.logout")


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get("username", "")
    audit_record(
        actor=None,
        action="auth.login_failed",
        target=_account(username),
        outcome=AuditOutcome.FAILURE,
        username=username,
    )


@receiver(user_locked_out, dispatch_uid="audit_lockout")
def audit_lockout(sender, request, username, ip_address, **kwargs):
    audit_record(
        actor=None,
        action="auth.lockout",
        target=_account(username or ""),
        outcome=AuditOutcome.DENIED,
        username=username or "",
        detail={"ip_address": ip_address},
    )
