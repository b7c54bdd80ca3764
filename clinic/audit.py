"""The audit trail: one function writes it, one function verifies it.

`audit_record` is called by services inside the transaction of the change it records, so the change
and its audit row commit or roll back together. Rows are chained by hash; writers are serialised (an
advisory lock on PostgreSQL, an immediate write lock on SQLite) so the chain has no forks. On PostgreSQL a
row is appended in one statement (`clinic_audit_append`, migration clinic 0003): a read that is audited
outside any transaction costs one round trip, and the lock is held only for that statement and its commit.
"""

from __future__ import annotations

import contextvars
import datetime
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
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


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256((event.prev_hash + hashed_content(event)).encode()).hexdigest()


def _append_postgresql(event: AuditEvent) -> None:
    """Lock, last hash, hash and insert in one statement; sets the row's id and hashes from what was written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, prev_hash, hash FROM clinic_audit_append("
            "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [
                _AUDIT_LOCK_KEY, event.time, event.actor_id, event.actor_username, event.role, event.clinic_id,
                event.action, event.object_type, event.object_id, event.patient_id, event.outcome,
                event.ip_address, event.request_id, json.dumps(event.detail), hashed_content(event),
            ],
        )  # fmt: skip
        event.id, event.prev_hash, event.hash = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias


def _append_locked(event: AuditEvent) -> None:
    """Elsewhere (SQLite): the write lock taken at BEGIN serialises writers while the row is chained and saved."""
    with transaction.atomic():
        event.prev_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
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
    if connection.vendor == "postgresql":
        _append_postgresql(event)
    else:
        _append_locked(event)
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def audit_chain_breaks(*, chunk_size: int = 5000) -> Iterator[ChainBreak]:
    """Walk the chain in id order and yield every row whose link or content does not check out."""
    expected_prev = GENESIS_HASH
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != expected_prev:
            yield ChainBreak(event.id, "previous-hash link broken (a row before it was removed or altered)")
        elif compute_hash(event) != event.hash:
            yield ChainBreak(event.id, "content does not match its hash (the row was altered)")
        expected_prev = event.hash


def audit_first_break() -> ChainBreak | None:
    return next(audit_chain_breaks(), None)
