"""Authentication backends.

`AddressThrottleBackend` comes first and refuses an address that has failed too often lately, before any password
is hashed; `ClinicModelBackend` is Django's ModelBackend with the signed-in user's clinic fetched in the same query.
"""

from axes.helpers import get_client_ip_address, get_cool_off
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from clinic import selectors
from clinic.models import User


class AddressThrottleBackend:
    """Refuse every sign-in from an address with LOGIN_ADDRESS_FAILURE_LIMIT failures within the cool-off time.

    django-axes locks a username at an address after a few failures; an attacker who tries one password on each of
    many usernames (spraying) never trips it, and each try costs an Argon2 hash. This counts the address's failures
    over all usernames. Raising PermissionDenied stops Django's `authenticate` before the backends that hash;
    `axes_locked_out` makes axes' middleware answer 429 (clinic.views.locked_out) instead of "wrong password".
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # a management command or a test calling authenticate() directly
            return None
        address = get_client_ip_address(request)
        if not address:
            return None
        since = timezone.now() - get_cool_off(request)
        if selectors.login_failures_from(ip_address=address, since=since) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            request.axes_locked_out = True
            raise PermissionDenied("Too many failed sign-ins from this address.")
        return None

    # No get_user: this backend never signs anyone in, and Django's test client signs in with the first backend
    # that has one.


class ClinicModelBackend(ModelBackend):
    """Every page's header names the user's clinic, and every scoped query starts from it; fetching it with the
    user saves a query on every request."""

    def get_user(self, user_id):
        user = User._default_manager.select_related("clinic").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
