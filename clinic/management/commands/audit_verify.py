from django.core.management.base import BaseCommand, CommandError

from clinic.audit import CheckpointInvalid, Verification, audit_checkpoint, audit_verify, checkpoint_path

MAX_GAPS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain and compare it with the last checkpoint kept outside the database; "
        "report broken links, rewritten rows, a chain cut short and id gaps, and exit non-zero if the trail was "
        "tampered with. With --checkpoint, also checkpoint the verified head."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help="After a successful check, write the chain's head to AUDIT_CHECKPOINT_PATH (signed).",
        )

    def handle(self, *args, checkpoint: bool = False, **options):
        try:
            result = audit_verify()
        except CheckpointInvalid as exc:
            raise CommandError(str(exc)) from None
        self._report_gaps(result)
        if not result.intact:
            lines = [f"Audit chain broken at event {b.event_id}: {b.reason}." for b in result.breaks[:10]]
            lines += [f"Audit trail does not match its checkpoint: {problem}." for problem in result.problems]
            raise CommandError("\n".join(lines))
        if result.last is None:
            self.stdout.write(self.style.SUCCESS("Audit trail is empty."))
            return
        head_id, head_hash = result.last
        message = f"Audit chain intact: {result.checked} events; last event {head_id}, hash {head_hash}."
        if result.checkpoint:
            message += f" Matches the checkpoint of {result.checkpoint.written_at} (event {result.checkpoint.last_id})."
        self.stdout.write(self.style.SUCCESS(message))
        if checkpoint:
            audit_checkpoint()
            self.stdout.write(self.style.SUCCESS(f"Checkpoint written to {checkpoint_path()} (event {head_id})."))
        elif result.checkpoint is None:
            self.stdout.write(
                self.style.WARNING(
                    f"No checkpoint at {checkpoint_path()} yet: rows cut off the end of the chain would go unnoticed. "
                    "Run `manage.py audit_verify --checkpoint` (beat does every AUDIT_CHECKPOINT_MINUTES)."
                )
            )

    def _report_gaps(self, result: Verification) -> None:
        if not result.gaps:
            return
        shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in result.gaps[:MAX_GAPS_SHOWN])
        more = f" and {len(result.gaps) - MAX_GAPS_SHOWN} more" if len(result.gaps) > MAX_GAPS_SHOWN else ""
        self.stdout.write(
            self.style.WARNING(
                f"Event ids missing: {shown}{more}. A rolled-back change leaves such a gap; a row removed from the "
                "chain also breaks the link after it (reported as a break)."
            )
        )
