"""Create the demo clinic with one account per role. Passwords are generated and printed once."""

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from clinic.models import Clinic, Role, User
from clinic.services import clinic_create, user_create, user_set_password

DEMO_SLUG = "demo"
DEMO_USERS = [
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("doctor", Role.DOCTOR, "Grace", "Okafor"),
    ("staff", Role.STAFF, "Sam", "Reyes"),
    ("patient", Role.PATIENT, "Pat", "Jones"),
]


class Command(BaseCommand):
    help = "Create the demo clinic and one user per role (admin, doctor, staff, patient)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Generate and print new passwords for the demo users."
        )

    def handle(self, *args, reset_passwords: bool = False, **options):
        clinic = Clinic.objects.filter(slug=DEMO_SLUG).first()
        if clinic is not None and not reset_passwords:
            self.stdout.write(
                "The demo clinic exists already; its passwords were printed when it was created.\n"
                "New ones: .venv/bin/python manage.py seed_demo --reset-passwords"
            )
            return
        credentials = self._seed(clinic)
        width = max(len(username) for username, _ in credentials)
        self.stdout.write(self.style.SUCCESS("\nDemo clinic accounts (shown once, not stored anywhere):"))
        for username, password in credentials:
            self.stdout.write(f"  {username.ljust(width)}  {password}")
        self.stdout.write("")

    @transaction.atomic
    def _seed(self, clinic: Clinic | None) -> list[tuple[str, str]]:
        if clinic is None:
            clinic = clinic_create(name="Demo Clinic", slug=DEMO_SLUG)
        credentials = []
        for username, role, first_name, last_name in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            user = User.objects.filter(username=username, clinic=clinic).first()
            if user is None:
                user_create(
                    clinic=clinic,
                    username=username,
                    password=password,
                    role=role,
                    first_name=first_name,
                    last_name=last_name,
                )
            else:
                user_set_password(user=user, password=password)
            credentials.append((username, password))
        return credentials
