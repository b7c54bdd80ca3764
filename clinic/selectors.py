from datetime import datetime

from axes.models import AccessAttempt
from django.db.models import QuerySet, Sum
from django.shortcuts import get_object_or_404

from clinic.models import AuditEvent, Clinic, User
from clinic.roles import can_manage_clinic, can_read_audit


def clinic_list_for(*, user: User) -> QuerySet[Clinic]:
    if user.is_superuser:
        return Clinic.objects.all()
    return Clinic.objects.filter(pk=user.clinic_id)


def user_list_for(*, user: User) -> QuerySet[User]:
    """Accounts a clinic admin manages: those of their own clinic."""
    if user.is_superuser:
        return User.objects.all()
    if not can_manage_clinic(user):
        return User.objects.none()
    return User.objects.filter(clinic_id=user.clinic_id)


def user_get_for(*, user: User, pk: int) -> User:
    return get_object_or_404(user_list_for(user=user), pk=pk)


def audit_event_list_for(*, user: User) -> QuerySet[AuditEvent]:
    if user.is_superuser:
        return AuditEvent.objects.all()
    if not can_read_audit(user):
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(clinic_id=user.clinic_id)


def login_failures_from(*, ip_address: str, since: datetime) -> int:
    """Failed sign-ins from one address since a time, over every username tried (django-axes keeps one row per
    username and address, with the failures since its last success)."""
    recent = AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gte=since)
    return recent.aggregate(total=Sum("failures_since_start"))["total"] or 0
