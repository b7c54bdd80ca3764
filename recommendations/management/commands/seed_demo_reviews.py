"""Give the demo clinic's advice a review history (demo doctors' decisions), then fit its feedback ranker; the demo
doctor signs a standing protocol for routine lifestyle advice (`recommendations.demo.demo_protocol_sign`), which
empties the queue of what needs no doctor; then a few critical results come in, not yet acknowledged or reviewed
(`patients.demo.demo_critical_results_enter`)."""

from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic
from patients.demo import demo_critical_results_enter
from recommendations import services
from recommendations.demo import demo_protocol_sign, demo_reviews_seed


class Command(BaseCommand):
    help = (
        "Demo doctors review the pending advice of some patients of a clinic; then its ranker is refitted, the demo "
        "doctor signs a standing protocol for routine lifestyle advice, and a few critical results are entered, "
        "left for the demo's users to acknowledge and review."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clinic", default="demo", help="Clinic slug (default: demo).")
        parser.add_argument("--patients", type=int, default=300, help="Patients whose advice is reviewed.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, clinic: str, patients: int, seed: int, **options):
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f'No clinic "{clinic}".')
        decisions = demo_reviews_seed(clinic=found, patients=patients, seed=seed, progress=self._progress)
        if decisions == 0:
            self.stdout.write(f"{found.name} has review decisions already (or no pending advice); nothing added.")
            self._protocol(found)
            return
        snapshot = services.ranker_rebuild(clinic_id=found.pk)
        ranker = f"ranker v{snapshot.version}" if snapshot else "no ranker (too few decisions)"
        self.stdout.write(self.style.SUCCESS(f"Made {decisions:,} demo review decisions; {ranker}."))
        self._protocol(found)
        critical = demo_critical_results_enter(clinic=found, seed=seed)
        self.stdout.write(f"Entered {len(critical)} critical results to acknowledge and review (the red banner).")

    def _protocol(self, clinic: Clinic) -> None:
        protocol, before, after = demo_protocol_sign(clinic=clinic)
        if protocol is None:
            return
        self.stdout.write(
            f'Dr {protocol.signed_by.get_full_name() or protocol.signed_by.username} signed "{protocol.title}": '
            f"released {protocol.released_now:,} items; the review queue went from {before['patients']:,} patients "
            f"({before['urgent']:,} high or critical) to {after['patients']:,} ({after['urgent']:,})."
        )

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stderr.write(f"\r  reviews [{'#' * filled}{'.' * (width - filled)}] {done:>6,} / {total:,}",
                          ending="\n" if done == total else "")  # fmt: skip
        self.stderr.flush()
