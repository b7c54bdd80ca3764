"""`manage.py import_hl7 FILE [FILE...]`: files of HL7 v2 ORU^R01 messages, processed as if they came over MLLP."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labfeed import hl7v2
from labfeed.models import HL7Message
from labfeed.services import hl7_message_receive


class Command(BaseCommand):
    help = (
        "Receive the HL7 v2 messages of files (one or more messages each, segments separated by CR or LF), each "
        "exactly as the MLLP listener would: its own transaction and acknowledgement, idempotent on MSH-10. Exits "
        "non-zero when any message was refused (AE or AR)."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args, files: list[Path], **options):
        refused = 0
        for path in files:
            try:
                text = hl7v2.decode(path.read_bytes())
            except OSError as exc:
                raise CommandError(f"{path}: {exc.strerror}.") from exc
            messages = hl7v2.split_messages(text)
            if not messages:
                self.stderr.write(f"{path}: no HL7 message in the file.")
                refused += 1
            for number, message in enumerate(messages, start=1):
                receipt = hl7_message_receive(raw=message)
                self.stdout.write(self._line(path, number, receipt))
                refused += receipt.code != "AA"
        if refused:
            raise CommandError(f"{refused} message(s) refused; nothing of them was stored.")

    @staticmethod
    def _line(path: Path, number: int, receipt) -> str:
        if receipt.code != "AA":
            return f"{path} message {number}: {receipt.code} {receipt.error}"
        log = HL7Message.objects.get(pk=receipt.message_id)
        again = " (sent before: nothing written)" if receipt.resent else ""
        counts = ", ".join(f"{name} {getattr(log, name)}" for name in (
            "created", "replaced", "corrected", "withdrawn", "duplicates", "held", "skipped", "critical"
        ) if getattr(log, name))  # fmt: skip
        lines = [f"{path} message {number} ({log.control_id}): AA {log.get_outcome_display().lower()}{again}"
                 + (f": {counts}" if counts else "")]  # fmt: skip
        if not receipt.resent:
            lines += [f"  {note['obx']}: {note['text']}" for note in log.notes]
        return "\n".join(lines)
