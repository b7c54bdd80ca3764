"""The portal's navigation: one list, each entry shown to the roles whose capability allows it."""

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse

from clinic import roles
from clinic.models import User


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    allowed: Callable[[User], bool]


NAVIGATION: list[NavItem] = [
    NavItem("Home", "home", lambda user: user.is_authenticated),
    NavItem("Patients", "patients:list", roles.can_view_patients),
    NavItem("Import results", "imports:upload", roles.can_enter_results),
    NavItem("Review advice", "recommendations:queue", roles.can_review_advice),
    NavItem("My results", "patients:mine", roles.is_patient),
    NavItem("Requests", "patients:requests", roles.can_handle_patient_requests),
    NavItem("My advice", "recommendations:mine", roles.is_patient),
    NavItem("Contact the clinic", "patients:contact_mine", roles.is_patient),
    NavItem("Population", "patients:dashboard", roles.can_view_dashboards),
    NavItem("Reviews", "recommendations:dashboard", roles.can_view_dashboards),
    NavItem("Models", "mltraining:dashboard", roles.can_manage_clinic),
    NavItem("Audit trail", "admin:clinic_auditevent_changelist", roles.can_read_audit),
    NavItem("Administration", "admin:index", roles.can_manage_clinic),
    NavItem("API", "api-docs", roles.can_view_patients),
]


def navigation_for(user: User, path: str = "") -> list[dict[str, str | bool]]:
    """The user's entries; the one whose address is the longest start of `path` is `current` (home only on itself),
    so a patient's page marks "Patients" as where the user is."""
    items = [{"label": item.label, "url": reverse(item.url_name), "current": False} for item in NAVIGATION
             if item.allowed(user)]  # fmt: skip
    within = [item for item in items if path == item["url"] or (item["url"] != "/" and path.startswith(item["url"]))]
    if within:
        max(within, key=lambda item: len(item["url"]))["current"] = True
    return items
