"""The audit trail: one function writes it, one function verifies it.

`audit_record` is called by services inside the transaction of the change it records, so the change and its audit
row commit or roll back together. Rows are chained: each row's hash covers its content and the previous row's
hash. Writers are serialised (an advisory lock on PostgreSQL, taken by `clinic_audit_head`, migration clinic 0006;
an immediate write lock on SQLite) so the chain has no forks.

The hash is an HMAC-SHA256 under AUDIT_HMAC_KEY, a key the database never sees: whoever owns the table (and can
disable its triggers) can change or delete rows, but cannot compute the hashes that would hide it. What the key
cannot reveal, rows cut off the end of the chain or the whole table emptied, a checkpoint does: the head of the
chain (last id, its hash, the number of rows), signed with the key, written to a file outside the database
(AUDIT_CHECKPOINT_PATH) by beat and by `audit_verify --checkpoint`. `audit_verify` checks the chain against it.

Rows written before the key existed keep their plain SHA-256 hash (`HashVersion.LEGACY`) and stay verifiable. The
first checkpoint fixes the last id such a row may have (`legacy_until`): a legacy row after a keyed one, or above
that id, is a row re-hashed without the key.
"""

from __future__ import annotations

import contextvars
import datetime
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Model
from django.utils import timezone

from clinic.models import AuditEvent, AuditOutcome, Clinic, User

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the lock that serialises audit writers on PostgreSQL.
_AUDIT_LOCK_KEY = 7_316_220_401


@dataclass(frozen=True)
class RequestContext:
    ip_address: str | None = None
    request_id: str = ""


_NO_REQUEST = RequestContext()
_request_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "audit_request_context", default=None
)


def set_request_context(context: RequestContext) -> contextvars.Token:
    """Called by the request middleware (or a task) so audit rows carry the IP and request id."""
    return _request_context.set(context)


def reset_request_context(token: contextvars.Token) -> None:
    _request_context.reset(token)


def _jsonable(detail: dict[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON so the hashed content is exactly what the database gives back.
    return json.loads(json.dumps(detail or {}, sort_keys=True, default=str))


def hashed_content(event: AuditEvent) -> str:
    """The row's content as its hash covers it: canonical JSON (sorted keys, no spaces, ASCII only)."""
    content = {
        "time": event.time.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "actor": event.actor_id,
        "actor_username": event.actor_username,
        "role": event.role,
        "clinic": event.clinic_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "patient_id": event.patient_id,
        "outcome": event.outcome,
        "ip_address": event.ip_address,
        "request_id": event.request_id,
        "detail": event.detail,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


class HashVersion(models.IntegerChoices):
    LEGACY = 1, "SHA-256 (rows written before the key)"
    KEYED = 2, "HMAC-SHA256 under AUDIT_HMAC_KEY"


def _key() -> bytes:
    return settings.AUDIT_HMAC_KEY.encode()


def compute_hash(event: AuditEvent) -> str:
    message = (event.prev_hash + hashed_content(event)).encode()
    if event.hash_version == HashVersion.LEGACY:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def _chain_head() -> str:
    """The last row's hash, read under the writers' lock (held until the transaction ends)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clinic_audit_head(%s)", [_AUDIT_LOCK_KEY])
            return cursor.fetchone()[0]
    # SQLite: the write lock taken at BEGIN (transaction_mode IMMEDIATE) serialises writers.
    return AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH


def _append(event: AuditEvent) -> None:
    """Chain and insert the row. On PostgreSQL no savepoint of its own: a failed insert fails the change it records
    anyway, and two statements (lock and head, insert) are all a row costs."""
    with transaction.atomic(savepoint=connection.vendor != "postgresql"):
        event.prev_hash = _chain_head()
        event.hash_version = HashVersion.KEYED
        event.hash = compute_hash(event)
        event.save(force_insert=True)


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: Model | None = None,
    patient_id: int | None = None,
    outcome: str = AuditOutcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    username: str = "",
) -> AuditEvent:
    """Append one audit row. `target` supplies the object type and id; its clinic wins over the actor's."""
    if actor is not None and not actor.is_authenticated:
        actor = None
    context = _request_context.get() or _NO_REQUEST
    if isinstance(target, Clinic):
        clinic_id = target.pk
    else:
        clinic_id = getattr(target, "clinic_id", None) or getattr(actor, "clinic_id", None)
    event = AuditEvent(
        time=timezone.now(),
        actor=actor,
        actor_username=actor.username if actor else username[:150],
        role=actor.role if actor else "",
        clinic_id=clinic_id,
        action=action,
        object_type=target._meta.label_lower if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        patient_id=patient_id,
        outcome=outcome,
        ip_address=context.ip_address,
        request_id=context.request_id,
        detail=_jsonable(detail),
    )
    _append(event)
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def audit_chain_breaks(
    *, after: tuple[int, str] | None = None, legacy_until: int | None = None, chunk_size: int = 5000
) -> Iterator[ChainBreak]:
    """Walk the chain in id order and yield every row whose link or content does not check out.

    `after`: (id, hash) of a row already verified (a checkpoint's head): the walk starts after it. `legacy_until`:
    the last id a row hashed without the key may have (from the first checkpoint).
    """
    expected_prev = after[1] if after else GENESIS_HASH
    rows = AuditEvent.objects.order_by("id")
    if after:
        rows = rows.filter(id__gt=after[0])
    keyed_seen = after is not None and legacy_until is not None and after[0] > legacy_until
    for event in rows.iterator(chunk_size=chunk_size):
        legacy = event.hash_version == HashVersion.LEGACY
        if legacy and (keyed_seen or (legacy_until is not None and event.id > legacy_until)):
            yield ChainBreak(event.id, "hashed without the key where the key was in use (the row was re-hashed)")
        elif event.prev_hash != expected_prev:
            yield ChainBreak(event.id, "previous-hash link broken (a row before it was removed or altered)")
        elif compute_hash(event) != event.hash:
            yield ChainBreak(event.id, "content does not match its hash (the row was altered)")
        keyed_seen = keyed_seen or not legacy
        expected_prev = event.hash


def audit_first_break() -> ChainBreak | None:
    return next(audit_chain_breaks(), None)


# --- the checkpoint: the chain's head, outside the database ------------------------------------------------------


class CheckpointInvalid(Exception):
    """The checkpoint file cannot be read, or its signature does not match (altered, or another key)."""


@dataclass(frozen=True)
class Checkpoint:
    last_id: int
    hash: str
    count: int  # rows with an id up to last_id
    legacy_until: int  # the last id a row hashed without the key may have; 0 when there is none
    written_at: str


def _signature(fields: dict[str, Any]) -> str:
    message = b"clinic audit checkpoint\n" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def checkpoint_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def checkpoint_read() -> Checkpoint | None:
    """The last checkpoint, or None if none was written yet."""
    path = checkpoint_path()
    try:
        data = json.loads(path.read_text())
        signature = data.pop("signature")
        checkpoint = Checkpoint(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointInvalid(f"The audit checkpoint {path} cannot be read ({exc}).") from None
    if not hmac.compare_digest(signature, _signature(asdict(checkpoint))):
        raise CheckpointInvalid(
            f"The audit checkpoint {path} does not carry a valid signature: it was altered, or AUDIT_HMAC_KEY changed."
        )
    return checkpoint


def _checkpoint_write(checkpoint: Checkpoint) -> None:
    """Replace the file in one step (write beside it, then rename), readable by its owner only."""
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(checkpoint)
    data["signature"] = _signature(asdict(checkpoint))
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    partial.chmod(0o600)
    os.replace(partial, path)


# --- verification --------------------------------------------------------------------------------------------------


@dataclass
class Verification:
    """What `audit_verify` found: breaks and checkpoint findings make the trail fail; id gaps are reported only
    (a rolled-back transaction leaves one too, and a removed row also breaks the link after it)."""

    checked: int = 0
    last: tuple[int, str] | None = None  # (id, hash) of the chain's head
    breaks: list[ChainBreak] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) missing id of each gap
    checkpoint: Checkpoint | None = None
    problems: list[str] = field(default_factory=list)  # the chain against the checkpoint

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.problems


def _checkpoint_compare(checkpoint: Checkpoint) -> list[str]:
    when = f"the checkpoint of {checkpoint.written_at}"
    head = AuditEvent.objects.filter(pk=checkpoint.last_id).first()
    if head is None:
        last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
        return [
            f"event {checkpoint.last_id}, the head of the chain at {when}, is missing: the chain was cut short "
            f"(rows deleted from its end, or the table emptied); it now "
            + (f"ends at event {last}" if last else "holds no events")
            + f" where {when} counted {checkpoint.count} up to event {checkpoint.last_id}"
        ]
    problems = []
    if head.hash != checkpoint.hash or compute_hash(head) != checkpoint.hash:
        problems.append(f"event {checkpoint.last_id} no longer has the hash {when} recorded: it was rewritten")
    count = AuditEvent.objects.filter(pk__lte=checkpoint.last_id).count()
    if count != checkpoint.count:
        problems.append(
            f"{count} events up to event {checkpoint.last_id} where {when} counted {checkpoint.count}: rows were "
            + ("removed" if count < checkpoint.count else "inserted")
        )
    return problems


def audit_verify(*, since_checkpoint: bool = False) -> Verification:
    """Check the chain (the whole of it, or only after the last checkpoint) and compare it with the checkpoint.

    Raises CheckpointInvalid if the checkpoint file is there but cannot be trusted.
    """
    checkpoint = checkpoint_read()
    result = Verification(checkpoint=checkpoint)
    if checkpoint is not None:
        result.problems = _checkpoint_compare(checkpoint)
    after = (checkpoint.last_id, checkpoint.hash) if since_checkpoint and checkpoint and not result.problems else None
    legacy_until = checkpoint.legacy_until if checkpoint else None
    previous_id = after[0] if after else 0
    rows = AuditEvent.objects.order_by("id").filter(id__gt=previous_id).values_list("id", "hash")
    breaks = audit_chain_breaks(after=after, legacy_until=legacy_until)
    result.breaks = list(breaks)
    for event_id, event_hash in rows.iterator(chunk_size=5000):
        if event_id != previous_id + 1 and previous_id:
            result.gaps.append((previous_id + 1, event_id - 1))
        previous_id = event_id
        result.checked += 1
        result.last = (event_id, event_hash)
    if result.last is None and checkpoint is not None and not result.problems:
        result.last = (checkpoint.last_id, checkpoint.hash)
    return result


def audit_checkpoint() -> Verification:
    """Verify the rows written since the last checkpoint and, if all is well, checkpoint the new head.

    Returns what was verified; nothing is written when the chain is broken or does not match the checkpoint (the
    last good checkpoint is kept as evidence), nor while the trail is empty.
    """
    result = audit_verify(since_checkpoint=True)
    if not result.intact or result.last is None:
        return result
    previous = result.checkpoint
    if previous is None:
        legacy = AuditEvent.objects.filter(hash_version=HashVersion.LEGACY).order_by("-id").values_list("id", flat=True)
        legacy_until = legacy.first() or 0
        count = AuditEvent.objects.filter(pk__lte=result.last[0]).count()
    else:
        legacy_until = previous.legacy_until
        count = previous.count + result.checked if result.last[0] != previous.last_id else previous.count
    _checkpoint_write(
        Checkpoint(
            last_id=result.last[0], hash=result.last[1], count=count, legacy_until=legacy_until,
            written_at=timezone.now().isoformat(timespec="seconds"),
        )
    )  # fmt: skip
    return result
