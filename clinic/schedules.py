"""Each clinic's nightly work at its own local night.

Beat runs `nightly_dispatch` every 15 minutes. For each clinic it reads the clinic's wall clock (its `time_zone`)
and enqueues every job of NIGHTLY_JOBS that is due: the local time has reached the job's hour on one of its days,
within CATCH_UP of it, and the job has not been enqueued for this local date yet. The local date of the last run
is stored (`NightlyRun`, claimed with a conditional update in the transaction that writes the outbox message), so a
job runs once a local night whatever the restarts, a second dispatcher or a change of clocks:

- the hour skipped when clocks go forward (02:00-03:00) is reached at the first dispatch after it (03:00);
- the hour repeated when they go back finds the local date already done the second time round;
- a beat stopped through the night catches up at its return if that is within CATCH_UP of the hour; later, the
  night is skipped rather than the work landing in the clinic's working day (the next night runs as usual).
"""

from __future__ import annotations

import datetime
import logging
import zoneinfo
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clinic.models import Clinic, NightlyRun
from clinic.outbox import outbox_send

logger = logging.getLogger(__name__)

SUNDAY = 6
CATCH_UP = datetime.timedelta(hours=6)


@dataclass(frozen=True)
class NightlyJob:
    task: str  # a task that takes the clinic's id
    at: datetime.time  # the clinic's local wall-clock time
    weekday: int | None = None  # 0 Monday ... 6 Sunday; None: every night

    def due(self, local: datetime.datetime) -> bool:
        """Whether the job is due at this local time (wall clock: an hour that clocks skip or repeat counts as is)."""
        if self.weekday is not None and local.weekday() != self.weekday:
            return False
        wall = local.replace(tzinfo=None)
        start = datetime.datetime.combine(wall.date(), self.at)
        return start <= wall < start + CATCH_UP


# The order of the hours is the order the work needs: drift is measured against the model in use before the weekly
# retraining may replace it; each ranker learns the day's review decisions before the nightly batch uses it; the
# batch scores with the model the retraining left active (a run takes up to 11 minutes).
NIGHTLY_JOBS: dict[str, NightlyJob] = {
    "drift": NightlyJob("mltraining.tasks.clinic_drift_check", datetime.time(1, 0), weekday=SUNDAY),
    "retraining": NightlyJob("mltraining.tasks.clinic_retraining", datetime.time(2, 0), weekday=SUNDAY),
    "rankers": NightlyJob("recommendations.tasks.rebuild_ranker", datetime.time(3, 30)),
    "scoring": NightlyJob("predictions.tasks.clinic_batch_scoring", datetime.time(4, 0)),
}


def clinic_local_time(*, time_zone: str, now: datetime.datetime) -> datetime.datetime:
    return now.astimezone(zoneinfo.ZoneInfo(time_zone))


def nightly_dispatch(*, now: datetime.datetime | None = None) -> list[tuple[int, str]]:
    """Enqueue every clinic's nightly jobs that are due at `now` (default: the present). Returns (clinic id, job)
    for each job enqueued. Two queries when nothing is due, whatever the number of clinics."""
    now = now or timezone.now()
    done = {(run.clinic_id, run.job): run.local_date for run in NightlyRun.objects.all()}
    dispatched = []
    for clinic_id, time_zone in Clinic.objects.order_by("pk").values_list("pk", "time_zone"):
        try:
            local = clinic_local_time(time_zone=time_zone, now=now)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a zone this machine's tz database lacks
            logger.error("Clinic %s has an unknown time zone %r: its nightly work waits", clinic_id, time_zone)
            continue
        for name, job in NIGHTLY_JOBS.items():
            last = done.get((clinic_id, name))
            if not job.due(local) or (last is not None and last >= local.date()):
                continue
            if _nightly_run_claim(clinic_id=clinic_id, name=name, job=job, local_date=local.date(), now=now):
                dispatched.append((clinic_id, name))
    if dispatched:
        logger.info("Nightly work enqueued: %s", dispatched)
    return dispatched


@transaction.atomic
def _nightly_run_claim(
    *, clinic_id: int, name: str, job: NightlyJob, local_date: datetime.date, now: datetime.datetime
) -> bool:
    """Mark the job enqueued for this local date and write its message, together; False if another dispatcher did."""
    try:
        with transaction.atomic():
            NightlyRun.objects.get_or_create(clinic_id=clinic_id, job=name)
    except IntegrityError:  # another dispatcher created the row meanwhile
        pass
    claimed = (
        NightlyRun.objects.filter(clinic_id=clinic_id, job=name)
        .filter(Q(local_date=None) | Q(local_date__lt=local_date))
        .update(local_date=local_date, enqueued_at=now)
    )
    if claimed:
        outbox_send(task=job.task, args=[clinic_id])
    return bool(claimed)
