"""The audit trail: one function writes it, one function verifies it.

`audit_record` is called by services inside the transaction of the change it records, so the change and its audit
row commit or roll back together. Rows are chained: each row's hash covers its content and the previous row's hash
in its chain. Each clinic has a chain of its own, and rows of no clinic (platform events) another, so writers of
different clinics never wait for each other: on PostgreSQL an advisory lock keyed by the clinic's id, taken by
`clinic_audit_chain_head` (migration clinic 0010), serialises the writers of one chain; on SQLite the write lock
taken at BEGIN serialises every writer.

The hash is an HMAC-SHA256 under AUDIT_HMAC_KEY, a key the database never sees: whoever owns the table (and can
disable its triggers) can change or delete rows, but cannot compute the hashes that would hide it. What the key
cannot reveal, rows cut off the end of a chain or the whole table emptied, a checkpoint does: the head of every
chain (last id, its hash, the number of rows), signed with the key, written to a file outside the database
(AUDIT_CHECKPOINT_PATH) by beat and by `audit_verify --checkpoint`. `audit_verify` checks the chains against it,
either all rows (`full`) or only the rows after the checkpoint, whose cost follows the rows written since.

Rows written before the per-clinic chains (`HashVersion.LEGACY` and `KEYED`) stay as they were: one chain across
all clinics, in id order, verified as before and closed (the `global` chain of the checkpoint). Rows written before
the key existed keep their plain SHA-256 hash (`LEGACY`); the first checkpoint fixes the last id such a row may have
(`legacy_until`): a legacy row after a keyed one, or above that id, is a row re-hashed without the key.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import hashlib
import heapq
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Model, Q
from django.db.models.sql import InsertQuery
from django.utils import timezone

from clinic.models import AuditEvent, AuditOutcome, Clinic, User

GENESIS_HASH = "0" * 64
GLOBAL_CHAIN = "global"  # the rows written before the per-clinic chains, one chain across all clinics
PLATFORM_CHAIN = "platform"  # rows of no clinic, written since


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
    LEGACY = 1, "SHA-256, one chain for all clinics (rows written before the key)"
    KEYED = 2, "HMAC-SHA256 under AUDIT_HMAC_KEY, one chain for all clinics"
    CLINIC_CHAIN = 3, "HMAC-SHA256 under AUDIT_HMAC_KEY, a chain per clinic"


def _key() -> bytes:
    return settings.AUDIT_HMAC_KEY.encode()


def compute_hash(event: AuditEvent) -> str:
    message = (event.prev_hash + hashed_content(event)).encode()
    if event.hash_version == HashVersion.LEGACY:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def chain_of(*, clinic_id: int | None, hash_version: int) -> str:
    """The name of the chain a row belongs to, as the checkpoint keys it."""
    if hash_version < HashVersion.CLINIC_CHAIN:
        return GLOBAL_CHAIN
    return PLATFORM_CHAIN if clinic_id is None else f"clinic:{clinic_id}"


def _chain_rows(chain: str) -> Q:
    if chain == GLOBAL_CHAIN:
        return Q(hash_version__lt=HashVersion.CLINIC_CHAIN)
    clinic = None if chain == PLATFORM_CHAIN else int(chain.removeprefix("clinic:"))
    return Q(hash_version__gte=HashVersion.CLINIC_CHAIN, clinic_id=clinic)


def _chain_head(clinic_id: int | None) -> str:
    """The last hash of the clinic's chain, read under the lock of that chain's writers (held until the transaction
    ends)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clinic_audit_chain_head(%s)", [clinic_id])
            return cursor.fetchone()[0]
    # SQLite: the write lock taken at BEGIN (transaction_mode IMMEDIATE) serialises writers.
    rows = AuditEvent.objects.filter(_chain_rows(chain_of(clinic_id=clinic_id, hash_version=HashVersion.CLINIC_CHAIN)))
    return rows.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH


_INSERTED_FIELDS = tuple(f for f in AuditEvent._meta.concrete_fields if not f.primary_key)


@functools.cache
def _insert_sql(vendor: str) -> str:
    """The row's INSERT as the ORM writes it (every column, the new id returned), compiled once: `Model.save()`
    compiles it anew for every row, which cost about as much CPU as the audit write's two round trips."""
    query = InsertQuery(AuditEvent)
    query.insert_values(_INSERTED_FIELDS, [AuditEvent(time=timezone.now())])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [AuditEvent._meta.pk]
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(_INSERTED_FIELDS) or not connection.features.can_return_columns_from_insert:
        raise AssertionError(f"Unexpected audit INSERT on {vendor}: {sql}")
    return sql


def _insert(event: AuditEvent) -> None:
    values = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in _INSERTED_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), values)
        event.pk = cursor.fetchone()[0]
    event._state.adding, event._state.db = False, connection.alias


def _append(event: AuditEvent) -> None:
    """Chain and insert the row. On PostgreSQL no savepoint of its own: a failed insert fails the change it records
    anyway, and two statements (lock and head, insert) are all a row costs."""
    with transaction.atomic(savepoint=connection.vendor != "postgresql"):
        event.prev_hash = _chain_head(event.clinic_id)
        event.hash_version = HashVersion.CLINIC_CHAIN
        event.hash = compute_hash(event)
        _insert(event)


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


# --- the checkpoint: every chain's head, outside the database -----------------------------------------------------


class CheckpointInvalid(Exception):
    """The checkpoint file cannot be read, or its signature does not match (altered, or another key)."""


@dataclass(frozen=True)
class ChainHead:
    last_id: int
    hash: str
    count: int  # rows of the chain with an id up to last_id


@dataclass(frozen=True)
class Checkpoint:
    chains: dict[str, ChainHead]
    top_id: int  # every row with an id up to this one was verified, except rows still uncommitted then
    legacy_until: int  # the last id a row hashed without the key may have; 0 when there is none
    written_at: str


def _signature(fields: dict[str, Any]) -> str:
    message = b"clinic audit checkpoint\n" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def checkpoint_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def _checkpoint_parse(data: dict[str, Any]) -> Checkpoint:
    if "chains" not in data:  # written before the per-clinic chains: the head of the one chain there was
        head = ChainHead(last_id=data["last_id"], hash=data["hash"], count=data["count"])
        chains = {GLOBAL_CHAIN: head} if head.last_id else {}
        return Checkpoint(chains, top_id=head.last_id, legacy_until=data["legacy_until"], written_at=data["written_at"])
    chains = {name: ChainHead(**head) for name, head in data["chains"].items()}
    return Checkpoint(chains, top_id=data["top_id"], legacy_until=data["legacy_until"], written_at=data["written_at"])


def checkpoint_read() -> Checkpoint | None:
    """The last checkpoint, or None if none was written yet."""
    path = checkpoint_path()
    try:
        data = json.loads(path.read_text())
        signature = data.pop("signature")
        checkpoint = _checkpoint_parse(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointInvalid(f"The audit checkpoint {path} cannot be read ({exc}).") from None
    if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(data)):
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


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


@dataclass
class _ChainWalk:
    """Where the walk of one chain stands."""

    expected_prev: str = GENESIS_HASH
    last: tuple[int, str] | None = None
    walked: int = 0
    counted_until_head: int = 0  # rows walked up to the checkpoint's head of this chain (full walks)


@dataclass
class Verification:
    """What `audit_verify` found: breaks and checkpoint findings make the trail fail; id gaps are reported only
    (a rolled-back transaction leaves one too, and a removed row also breaks the link after it)."""

    full: bool = True
    checked: int = 0  # rows read and checked
    last: tuple[int, str] | None = None  # (id, hash) of the last row of the trail
    breaks: list[ChainBreak] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) missing id of each gap (full walks)
    checkpoint: Checkpoint | None = None
    problems: list[str] = field(default_factory=list)  # the chains against the checkpoint
    chains: dict[str, ChainHead] = field(default_factory=dict)  # each chain's head after the walk
    last_legacy_id: int = 0  # the last row hashed without the key (full walks)

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.problems


def _describe(chain: str) -> str:
    if chain == GLOBAL_CHAIN:
        return "the chain of the rows written before the per-clinic chains"
    return "the chain of platform events" if chain == PLATFORM_CHAIN else f"clinic {chain.split(':')[1]}'s chain"


def _check_row(event: AuditEvent, walk: _ChainWalk, legacy_until: int | None, keyed_seen: bool) -> str | None:
    legacy = event.hash_version == HashVersion.LEGACY
    if legacy and (keyed_seen or (legacy_until is not None and event.id > legacy_until)):
        return "hashed without the key where the key was in use (the row was re-hashed)"
    if event.prev_hash != walk.expected_prev:
        return "previous-hash link broken (a row before it was removed or altered)"
    if compute_hash(event) != event.hash:
        return "content does not match its hash (the row was altered)"
    return None


def _walk(
    rows: Iterable[AuditEvent], walks: dict[str, _ChainWalk], result: Verification, *, legacy_until: int | None,
    keyed_seen: bool, heads: dict[str, ChainHead],
) -> Iterator[ChainBreak]:  # fmt: skip
    """Check rows in id order, each against the last row of its own chain."""
    previous_id = 0
    for event in rows:
        chain = chain_of(clinic_id=event.clinic_id, hash_version=event.hash_version)
        walk = walks.setdefault(chain, _ChainWalk())
        reason = _check_row(event, walk, legacy_until, keyed_seen)
        if reason:
            yield ChainBreak(event.id, reason)
        if event.hash_version == HashVersion.LEGACY:
            result.last_legacy_id = event.id
        else:
            keyed_seen = True
        walk.expected_prev, walk.last = event.hash, (event.id, event.hash)
        walk.walked += 1
        head = heads.get(chain)
        if head and event.id <= head.last_id:
            walk.counted_until_head += 1
        if result.full and previous_id and event.id != previous_id + 1:
            result.gaps.append((previous_id + 1, event.id - 1))
        previous_id = event.id
        result.checked += 1
        if result.last is None or event.id > result.last[0]:
            result.last = (event.id, event.hash)


def audit_chain_breaks(*, legacy_until: int | None = None, chunk_size: int = 5000) -> Iterator[ChainBreak]:
    """Walk every chain from its first row and yield every row whose link or content does not check out."""
    rows = AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size)
    yield from _walk(rows, {}, Verification(), legacy_until=legacy_until, keyed_seen=False, heads={})


def audit_first_break() -> ChainBreak | None:
    return next(audit_chain_breaks(), None)


def _heads_compare(checkpoint: Checkpoint) -> list[str]:
    """Each chain's head at the checkpoint is still there, with its hash, and its content still matches it."""
    when = f"the checkpoint of {checkpoint.written_at}"
    ids = [head.last_id for head in checkpoint.chains.values()]
    found = {}
    for start in range(0, len(ids), 1000):
        found.update(AuditEvent.objects.in_bulk(ids[start : start + 1000]))
    problems = []
    for chain, head in checkpoint.chains.items():
        event = found.get(head.last_id)
        if event is None:
            last = AuditEvent.objects.filter(_chain_rows(chain)).order_by("-id").values_list("id", flat=True).first()
            problems.append(
                f"event {head.last_id}, the head of {_describe(chain)} at {when}, is missing: the chain was cut "
                "short (rows deleted from its end, or the table emptied); it now "
                + (f"ends at event {last}" if last else "holds no events")
                + f" where {when} counted {head.count} up to event {head.last_id}"
            )
        elif event.hash != head.hash or compute_hash(event) != head.hash:
            problems.append(f"event {head.last_id} no longer has the hash {when} recorded: it was rewritten")
    return problems


def _rows_after(checkpoint: Checkpoint, chunk_size: int) -> Iterator[AuditEvent]:
    """The rows no checkpoint has verified, in id order: every row after the checkpoint's top, and the few of each
    chain after its head but below the top (written by a transaction that committed after the checkpoint read)."""
    rows = AuditEvent.objects.order_by("id")
    later = rows.filter(id__gt=checkpoint.top_id).iterator(chunk_size=chunk_size)
    # The rows before the per-clinic chains had one writers' lock, which kept them in id order: none commits late.
    known = set(checkpoint.chains) - {GLOBAL_CHAIN}
    chains = sorted(known | {PLATFORM_CHAIN} | {f"clinic:{pk}" for pk in Clinic.objects.values_list("pk", flat=True)})
    late: list[AuditEvent] = []
    for start in range(0, len(chains), 200):
        conditions = [
            _chain_rows(chain) & Q(id__gt=checkpoint.chains[chain].last_id) if chain in known else _chain_rows(chain)
            for chain in chains[start : start + 200]
        ]
        late += rows.filter(reduce(or_, conditions), id__lte=checkpoint.top_id)
    return heapq.merge(sorted(late, key=lambda event: event.id), later, key=lambda event: event.id)


def audit_verify(*, since_checkpoint: bool = False, chunk_size: int = 5000) -> Verification:
    """Check the chains (every row, or only the rows after the last checkpoint) and compare them with the checkpoint.

    Raises CheckpointInvalid if the checkpoint file is there but cannot be trusted.
    """
    checkpoint = checkpoint_read()
    result = Verification(checkpoint=checkpoint)
    if checkpoint is not None:
        result.problems = _heads_compare(checkpoint)
    result.full = not (since_checkpoint and checkpoint and not result.problems)
    legacy_until = checkpoint.legacy_until if checkpoint else None
    if result.full:
        walks: dict[str, _ChainWalk] = {}
        rows: Iterable[AuditEvent] = AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size)
        keyed_seen = False
    else:
        walks = {chain: _ChainWalk(expected_prev=head.hash) for chain, head in checkpoint.chains.items()}
        rows = _rows_after(checkpoint, chunk_size)
        keyed_seen = checkpoint.top_id > checkpoint.legacy_until  # rows after the last legacy one were keyed
    heads = checkpoint.chains if checkpoint else {}
    result.breaks = list(_walk(rows, walks, result, legacy_until=legacy_until, keyed_seen=keyed_seen, heads=heads))
    if result.full and checkpoint is not None:
        result.problems += _counts_compare(checkpoint, walks)
    previous = checkpoint.chains if checkpoint and not result.full else {}
    for chain, walk in walks.items():
        before = previous.get(chain)
        if walk.last is None:
            if before:
                result.chains[chain] = before
            continue
        count = walk.walked + (before.count if before else 0)
        result.chains[chain] = ChainHead(last_id=walk.last[0], hash=walk.last[1], count=count)
    return result


def _counts_compare(checkpoint: Checkpoint, walks: dict[str, _ChainWalk]) -> list[str]:
    problems = []
    for chain, head in checkpoint.chains.items():
        walk = walks.get(chain)
        count = walk.counted_until_head if walk else 0
        if walk is None or walk.last is None or walk.last[0] < head.last_id or count == head.count:
            continue  # a chain that no longer reaches its head is reported as cut short
        problems.append(
            f"{count} events of {_describe(chain)} up to event {head.last_id} where the checkpoint of "
            f"{checkpoint.written_at} counted {head.count}: rows were "
            + ("removed" if count < head.count else "inserted")
        )
    return problems


def audit_checkpoint() -> Verification:
    """Verify the rows written since the last checkpoint and, if all is well, checkpoint every chain's new head.

    Returns what was verified; nothing is written when a chain is broken or does not match the checkpoint (the
    last good checkpoint is kept as evidence), nor while the trail is empty.
    """
    result = audit_verify(since_checkpoint=True)
    if not result.intact or not result.chains:
        return result
    previous = result.checkpoint
    legacy_until = previous.legacy_until if previous else result.last_legacy_id
    top_id = max(result.last[0] if result.last else 0, previous.top_id if previous else 0)
    _checkpoint_write(
        Checkpoint(
            chains=result.chains, top_id=top_id, legacy_until=legacy_until,
            written_at=timezone.now().isoformat(timespec="seconds"),
        )
    )  # fmt: skip
    return result
