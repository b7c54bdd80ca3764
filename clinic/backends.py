"""The authentication backend: Django's ModelBackend, with the signed-in user's clinic fetched in the same query.

Every page's header names the user's clinic, and every scoped query starts from it; fetching it with the user
saves a query on every request.
"""

from django.contrib.auth.backends import ModelBackend

from clinic.models import User


class ClinicModelBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            user = User._default_manager.select_related("clinic").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
