"""The transactional outbox: work for the Celery workers that must not be lost when the broker is down.

A service that calls for background work (`outbox_send`) writes an `OutboxMessage` row in its own transaction, so
the change and its message commit or roll back together. After commit the message is sent at once; when Redis is
down the send fails quietly, the change still answers as having succeeded, and the row waits. `outbox_drain`,
run every minute by beat and when a worker starts, sends what is left. A row is leased before it is sent, so the
sender after commit and a drain never both send it; a sender that dies between sending and marking the row sent
leaves it to be sent again after its lease, so a consumer that must not do its work twice passes `once=True` and
calls `outbox_consume` in the transaction of its work.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from clinic.models import OutboxMessage

logger = logging.getLogger(__name__)

LEASE = datetime.timedelta(seconds=60)  # longer than a send can take; a lost sender's rows wait this long
KEEP_SENT = datetime.timedelta(days=7)  # sent rows are kept this long, for an operator's questions, then removed
DRAIN_LIMIT = 1000  # rows per drain; the next drain (a minute later) takes the rest
BROKER_RETRY_AFTER = 5.0  # seconds after a refused send in which this process does not try the broker again
_FAIL_FAST = {"max_retries": 0, "socket_connect_timeout": 1}
_broker_down_until = 0.0  # time.monotonic() until which the broker is taken as down
POOL_LIMIT = 10  # broker connections a process keeps (a sync worker sends one request's messages at a time)
_pools: dict[tuple[int, str], Any] = {}
# What a send raises when the broker cannot be reached. Anything else (a task that fails when run in-process,
# a bug) propagates as it would without the outbox.
SEND_ERRORS = (BrokerError, RedisError, ConnectionError, TimeoutError)


def outbox_send(*, task: str, args: list[Any] | None = None, once: bool = False) -> OutboxMessage:
    """Record a message for `task` (its registered name) in the current transaction; send it after commit.

    With `once`, the task is called with `message_id=<row id>` and must call `outbox_consume` in the transaction
    of its work, so that a message sent twice does its work once.
    """
    # Written already leased to the sender after commit, so that sender needs no query to lease it, and a drain
    # that runs between the commit and the send leaves it alone (it did so before, lost the race to lease it).
    held_until = timezone.now() + LEASE
    message = OutboxMessage.objects.create(task=task, args=list(args or []), once=once, leased_until=held_until)
    message._held_until = held_until  # this process's own lease, not a lease read from the table
    transaction.on_commit(lambda: _send_all([message]))
    return message


def _held(message: OutboxMessage) -> bool:
    """This process leased the message when writing it, and the lease has time left for a send: a transaction
    that took longer than half the lease to commit leases it again, as the drain does."""
    held_until = getattr(message, "_held_until", None)
    return held_until is not None and held_until - timezone.now() >= LEASE / 2


def _release(messages: list[OutboxMessage]) -> None:
    """Give back the leases this process took when writing messages it did not send: the next drain sends them."""
    if held := [message.pk for message in messages if getattr(message, "_held_until", None)]:
        OutboxMessage.objects.filter(pk__in=held, sent_at=None).update(leased_until=None)


def outbox_consume(*, message_id: int | None) -> bool:
    """In the consumer's transaction: True the first time this message is consumed, False on a repeat delivery.

    A message sent without the outbox (`message_id` None) is always consumed.
    """
    if message_id is None:
        return True
    return bool(OutboxMessage.objects.filter(pk=message_id, consumed_at=None).update(consumed_at=timezone.now()))


def outbox_drain(*, limit: int = DRAIN_LIMIT) -> int:
    """Send the messages still unsent, oldest first; stop at the first that the broker refuses. Returns how many
    were sent. Also forgets messages sent more than KEEP_SENT ago."""
    global _broker_down_until
    OutboxMessage.objects.filter(sent_at__lt=timezone.now() - KEEP_SENT).delete()
    _broker_down_until = 0.0  # the drain is the retry: it always tries the broker
    sent = _send_all(list(OutboxMessage.objects.filter(sent_at=None).order_by("created_at", "pk")[:limit]))
    if sent:
        logger.info("Outbox: %s delayed messages sent", sent)
    return sent


def outbox_unsent_count() -> int:
    return OutboxMessage.objects.filter(sent_at=None).count()


def _lease(message_id: int, held_until: datetime.datetime | None = None) -> bool:
    """Lease the message if nobody holds it (or if the lease is this process's own, `held_until`)."""
    now = timezone.now()
    free = Q(leased_until=None) | Q(leased_until__lt=now)
    if held_until is not None:
        free |= Q(leased_until=held_until)
    return bool(OutboxMessage.objects.filter(free, pk=message_id, sent_at=None).update(leased_until=now + LEASE))


def _task(name: str):
    try:
        return current_app.tasks[name]
    except KeyError:  # a process that has not imported the task's module yet (a worker has them all)
        current_app.loader.import_default_modules()
        return current_app.tasks[name]


def _send_all(messages: list[OutboxMessage]) -> int:
    """Send each message no other sender holds, on one broker connection; stop at the first the broker refuses.
    Returns how many were sent. While the broker is known to be down (BROKER_RETRY_AFTER), nothing is tried."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until and not current_app.conf.task_always_eager:
        _release(messages)
        return 0
    sent = 0
    # Tasks run in this process (no broker: `make run`, tests): nothing to connect to.
    eager = current_app.conf.task_always_eager
    with contextlib.nullcontext() if eager else _connections().acquire(block=True) as connection:
        for index, message in enumerate(messages):
            if not _held(message) and not _lease(message.pk, getattr(message, "_held_until", None)):
                continue  # sent already, or another sender holds it
            try:
                _send(message, connection)
            except SEND_ERRORS as exc:
                if connection is not None:
                    connection.close()  # whatever state it was left in: the next send connects afresh
                logger.warning("Outbox: %s #%s not sent, kept for later: %s", message.task, message.pk, exc)
                OutboxMessage.objects.filter(pk=message.pk).update(
                    leased_until=None, attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
                )
                _broker_down_until = time.monotonic() + BROKER_RETRY_AFTER
                _release(messages[index + 1 :])
                break
            OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now(), attempts=F("attempts") + 1)
            sent += 1
    return sent


def _connections():
    """This process's pool of broker connections, kept open between requests: opening one for each send (a TCP
    connection to Redis and its channel) was a third of result entry's CPU time. One try to connect, within a
    second: the row is the retry, and a request must not wait for a broker that is down (kombu would otherwise try
    again for seconds before giving up). A pool per process and broker (a forked worker, or tests that move it)."""
    key = (os.getpid(), current_app.conf.broker_url)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = current_app.connection_for_write(transport_options=_FAIL_FAST).Pool(limit=POOL_LIMIT)
    return pool


def _send(message: OutboxMessage, connection) -> None:
    task = _task(message.task)
    kwargs = {"message_id": message.pk} if message.once else {}
    # In-process tasks (the demo, the tests) run here, and their errors propagate as they would without the outbox.
    task.apply_async(args=message.args, kwargs=kwargs, retry=False, connection=connection)
