"""`manage.py resolve_mrn_clashes [--rename]`: patients of one clinic whose MRNs differ only in case.

Such records could be stored before MRNs were compared without regard to case; migration patients 0010 refuses
to run while any remain. Without options the command lists them; with --rename every patient of a clash but the
oldest gets the MRN plus -DUP1 (or -DUP2, ... : the first free), one audit row each.
"""

from django.core.management.base import BaseCommand

from patients.selectors import patient_mrn_clashes
from patients.services import patient_mrn_clashes_resolve

USERNAME = "manage.py resolve_mrn_clashes"


class Command(BaseCommand):
    help = (
        "List the patients of a clinic whose MRNs differ only in case; with --rename, give each of them but the "
        "oldest a new MRN (audited)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rename", action="store_true", help="Give every clashing patient but the oldest a new MRN."
        )

    def handle(self, *args, rename: bool, **options):
        clashes = patient_mrn_clashes()
        if not clashes:
            self.stdout.write("No MRN clashes.")
            return
        for clash in clashes:
            patients = ", ".join(f"{p.mrn!r} (patient {p.pk})" for p in clash.patients)
            self.stdout.write(f"clinic {clash.patients[0].clinic.slug} (id {clash.clinic_id}): {patients}")
        if not rename:
            self.stdout.write(f"{len(clashes)} clash(es). Run with --rename to give all but the oldest a new MRN.")
            return
        for change in patient_mrn_clashes_resolve(username=USERNAME):
            self.stdout.write(
                f"patient {change.patient.pk}: MRN {change.old_mrn!r} is now {change.patient.mrn!r} "
                f"(patient {change.kept_by.pk} keeps {change.kept_by.mrn!r})"
            )
