from django.core.management.base import BaseCommand, CommandError

from clinic.audit import audit_first_break
from clinic.models import AuditEvent


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; report the first broken link and exit non-zero if there is one."

    def handle(self, *args, **options):
        breakage = audit_first_break()
        if breakage is not None:
            raise CommandError(f"Audit chain broken at event {breakage.event_id}: {breakage.reason}.")
        last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        count = AuditEvent.objects.count()
        if last is None:
            self.stdout.write(self.style.SUCCESS("Audit trail is empty."))
            return
        # Print the head so an operator can keep it elsewhere: rows cut off the end leave no broken link.
        message = f"Audit chain intact: {count} events; last event {last[0]}, hash {last[1]}."
        self.stdout.write(self.style.SUCCESS(message))
