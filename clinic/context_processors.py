from django.utils.functional import SimpleLazyObject

from clinic.navigation import navigation_for
from patients import selectors as patient_selectors


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"navigation": []}
    return {
        "navigation": navigation_for(user, request.path),
        "signed_in_name": SimpleLazyObject(lambda: _signed_in_name(user)),
    }


def _signed_in_name(user) -> str:
    """Who the portal greets and names in its bar: a patient account by its own patient's name; read only on the
    pages that show it (lazily), one query for a patient account and none for staff."""
    return patient_selectors.own_patient_name(user=user) or user.get_full_name() or user.username
