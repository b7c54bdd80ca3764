from django.core.management.base import BaseCommand, CommandError

from clinic.audit import CheckpointInvalid, Verification, audit_checkpoint, audit_verify, checkpoint_path

MAX_GAPS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chains (one per clinic, one for platform events, one for the rows written "
        "before them) and compare them with the last checkpoint kept outside the database; report broken links, "
        "rewritten rows, a chain cut short and id gaps, and exit non-zero if the trail was tampered with. Every row "
        "is read unless --since-checkpoint. With --checkpoint, also checkpoint the verified heads."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help="After a successful check, write each chain's head to AUDIT_CHECKPOINT_PATH (signed).",
        )
        parser.add_argument(
            "--since-checkpoint",
            action="store_true",
            help="Read only the rows written after the checkpoint (and check each chain's head against it): the cost "
            "follows the rows written since. Rows before it are checked by the full run (the default).",
        )

    def handle(self, *args, checkpoint: bool = False, since_checkpoint: bool = False, **options):
        try:
            result = audit_verify(since_checkpoint=since_checkpoint)
        except CheckpointInvalid as exc:
            raise CommandError(str(exc)) from None
        self._report_gaps(result)
        if not result.intact:
            lines = [f"Audit chain broken at event {b.event_id}: {b.reason}." for b in result.breaks[:10]]
            lines += [f"Audit trail does not match its checkpoint: {problem}." for problem in result.problems]
            raise CommandError("\n".join(lines))
        if not result.chains:
            self.stdout.write(self.style.SUCCESS("Audit trail is empty."))
            return
        scope = "since the checkpoint" if not result.full else "in all"
        message = f"Audit chain intact: {result.checked} events checked {scope} ({len(result.chains)} chains)"
        message += f"; last event {result.last[0]}, hash {result.last[1]}." if result.last else "."
        if result.checkpoint:
            message += f" Matches the checkpoint of {result.checkpoint.written_at} (event {result.checkpoint.top_id})."
        self.stdout.write(self.style.SUCCESS(message))
        if checkpoint:
            written = audit_checkpoint()
            top = written.last[0] if written.last else result.checkpoint.top_id
            self.stdout.write(self.style.SUCCESS(f"Checkpoint written to {checkpoint_path()} (event {top})."))
        elif result.checkpoint is None:
            self.stdout.write(
                self.style.WARNING(
                    f"No checkpoint at {checkpoint_path()} yet: rows cut off the end of a chain would go unnoticed. "
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
