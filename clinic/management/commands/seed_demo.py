"""Create the demo clinic (flagged `is_demo`) with one account per role, and optionally a synthetic patient cohort.

Passwords are generated and printed once.
"""

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from clinic.models import Clinic, Role, User
from clinic.services import clinic_create, user_create, user_set_password
from patients.demo import demo_cohort_load
from patients.models import Patient

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
        parser.add_argument(
            "--patients", type=int, default=0, help="Add this many synthetic patients if the clinic has none."
        )
        parser.add_argument("--seed", type=int, default=0, help="Random seed of the synthetic cohort.")

    def handle(self, *args, reset_passwords: bool = False, patients: int = 0, seed: int = 0, **options):
        clinic = Clinic.objects.filter(slug=DEMO_SLUG).first()
        if clinic is not None and not reset_passwords:
            self.stdout.write(
                "The demo clinic exists already; its passwords were printed when it was created.\n"
                "New ones: .venv/bin/python manage.py seed_demo --reset-passwords"
            )
        else:
            self._print_credentials(self._seed(clinic))
        if patients > 0:
            self._load_cohort(Clinic.objects.get(slug=DEMO_SLUG), patients, seed)

    def _load_cohort(self, clinic: Clinic, n_patients: int, seed: int) -> None:
        if Patient.objects.filter(clinic=clinic).exists():
            self.stdout.write(f"{clinic.name} has patients already; no synthetic cohort added.")
            return
        self.stdout.write(f"Generating {n_patients:,} synthetic patients (seed {seed})...")
        counts = demo_cohort_load(
            clinic=clinic,
            n_patients=n_patients,
            seed=seed,
            link_user=User.objects.filter(clinic=clinic, role=Role.PATIENT).first(),
            progress=self._progress,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {counts['patients']:,} patients, {counts['observations']:,} observations "
                f"and {counts['conditions']:,} diagnoses."
            )
        )

    def _progress(self, stage: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        ending = "\n" if done == total else ""
        self.stderr.write(
            f"\r  {stage:<13} [{'#' * filled}{'.' * (width - filled)}] {done:>10,} / {total:,}", ending=ending
        )
        self.stderr.flush()

    def _print_credentials(self, credentials: list[tuple[str, str]]) -> None:
        width = max(len(username) for username, _ in credentials)
        self.stdout.write(self.style.SUCCESS("\nDemo clinic accounts (shown once, not stored anywhere):"))
        for username, password in credentials:
            self.stdout.write(f"  {username.ljust(width)}  {password}")
        self.stdout.write("")

    @transaction.atomic
    def _seed(self, clinic: Clinic | None) -> list[tuple[str, str]]:
        if clinic is None:
            # The one clinic where a model trained on the synthetic cohort may be active (`Clinic.is_demo`).
            clinic = clinic_create(name="Demo Clinic", slug=DEMO_SLUG, is_demo=True)
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
