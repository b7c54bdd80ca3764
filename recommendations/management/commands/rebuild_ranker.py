"""Refit the feedback ranker of a clinic (or of every clinic with review decisions) now."""

from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic
from recommendations import services


class Command(BaseCommand):
    help = "Refit the feedback-adjusted ranker from the clinic's review decisions (nightly by beat as well)."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", help="Clinic slug; default: every clinic with decisions.")

    def handle(self, *args, clinic=None, **options):
        if clinic is None:
            rebuilt = services.rankers_rebuild_all()
            self.stdout.write(f"Rebuilt the rankers of {len(rebuilt)} clinic(s).")
            return
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f'No clinic "{clinic}".')
        snapshot = services.ranker_rebuild(clinic_id=found.pk)
        if snapshot is None:
            self.stdout.write(self.style.WARNING(f"{found}: not enough review decisions yet to learn from."))
        else:
            self.stdout.write(f"{found}: ranker v{snapshot.version} from {snapshot.events:,} decisions "
                              f"on {snapshot.patients:,} patients.")  # fmt: skip
