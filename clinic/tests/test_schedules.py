"""Each clinic's nightly work runs at its own local night, once a local date, across restarts and clock changes."""

import datetime
from collections import Counter

import pytest

from clinic import schedules
from clinic.models import NightlyRun, OutboxMessage
from clinic.tests.factories import ClinicFactory

UTC = datetime.UTC
STEP = datetime.timedelta(minutes=15)  # beat's interval


def _utc(*fields: int) -> datetime.datetime:
    return datetime.datetime(*fields, tzinfo=UTC)


def _dispatch_every_15_minutes(start: datetime.datetime, hours: int) -> list[tuple[datetime.datetime, int, str]]:
    """Beat's dispatcher over `hours` from `start` (UTC); returns (time, clinic id, job) for what it enqueued."""
    enqueued = []
    now = start
    while now < start + datetime.timedelta(hours=hours):
        enqueued += [(now, clinic_id, job) for clinic_id, job in schedules.nightly_dispatch(now=now)]
        now += STEP
    return enqueued


def _at(enqueued, clinic, job) -> list[datetime.datetime]:
    return [when for when, clinic_id, name in enqueued if clinic_id == clinic.pk and name == job]


@pytest.fixture
def brisbane(db):
    return ClinicFactory(slug="brisbane", time_zone="Australia/Brisbane")  # UTC+10, no daylight saving


@pytest.fixture
def bogota(db):
    return ClinicFactory(slug="bogota", time_zone="America/Bogota")  # UTC-5, no daylight saving


def test_each_clinic_gets_its_nightly_scoring_at_its_own_local_4am_once_a_night(brisbane, bogota):
    enqueued = _dispatch_every_15_minutes(_utc(2026, 6, 9, 0, 0), hours=72)  # Tue-Thu

    # 04:00 in Brisbane is 18:00 UTC the day before; 04:00 in Bogota is 09:00 UTC.
    assert _at(enqueued, brisbane, "scoring") == [_utc(2026, 6, d, 18, 0) for d in (9, 10, 11)]
    assert _at(enqueued, bogota, "scoring") == [_utc(2026, 6, d, 9, 0) for d in (9, 10, 11)]
    assert _at(enqueued, brisbane, "rankers")[0] == _utc(2026, 6, 9, 17, 30)  # 03:30 local
    assert _at(enqueued, bogota, "drift") == []  # weekly, on Sundays


def test_the_weekly_drift_check_and_retraining_run_on_the_clinics_local_sunday_in_order(brisbane, bogota):
    enqueued = _dispatch_every_15_minutes(_utc(2026, 6, 12, 0, 0), hours=96)  # Fri-Mon UTC

    # Sunday 14 June 01:00 in Brisbane is Saturday 13 June 15:00 UTC; in Bogota it is Sunday 06:00 UTC.
    assert _at(enqueued, brisbane, "drift") == [_utc(2026, 6, 13, 15, 0)]
    assert _at(enqueued, brisbane, "retraining") == [_utc(2026, 6, 13, 16, 0)]
    assert _at(enqueued, bogota, "drift") == [_utc(2026, 6, 14, 6, 0)]
    assert _at(enqueued, bogota, "retraining") == [_utc(2026, 6, 14, 7, 0)]


def test_what_is_enqueued_is_the_jobs_task_for_that_clinic_through_the_outbox(brisbane):
    schedules.nightly_dispatch(now=_utc(2026, 6, 9, 18, 5))  # Wednesday 04:05 in Brisbane

    messages = Counter((m.task, tuple(m.args)) for m in OutboxMessage.objects.all())
    assert messages == {
        ("predictions.tasks.clinic_batch_scoring", (brisbane.pk,)): 1,
        ("recommendations.tasks.rebuild_ranker", (brisbane.pk,)): 1,  # 03:30 passed too, within the catch-up
    }
    run = NightlyRun.objects.get(clinic=brisbane, job="scoring")
    assert run.local_date == datetime.date(2026, 6, 10)


def test_a_restarted_or_second_dispatcher_does_not_run_a_night_twice(brisbane):
    night = _utc(2026, 6, 9, 18, 0)

    first = schedules.nightly_dispatch(now=night)
    again = schedules.nightly_dispatch(now=night + datetime.timedelta(minutes=1))  # restarted beat, same night

    assert ("scoring" in {job for _, job in first}, again) == (True, [])
    assert OutboxMessage.objects.filter(task="predictions.tasks.clinic_batch_scoring").count() == 1


def test_a_beat_stopped_through_the_night_catches_up_in_the_morning_but_not_in_the_working_day(bogota):
    back_at_10_30 = _utc(2026, 6, 9, 15, 30)  # Bogota's 04:00 passed six and a half hours ago
    back_at_09_45 = _utc(2026, 6, 10, 14, 45)

    assert schedules.nightly_dispatch(now=back_at_10_30) == []
    assert (bogota.pk, "scoring") in schedules.nightly_dispatch(now=back_at_09_45)


def test_a_new_clinic_waits_for_its_first_night(db):
    ClinicFactory(time_zone="America/Bogota")

    assert schedules.nightly_dispatch(now=_utc(2026, 6, 9, 20, 0)) == []  # 15:00 local


@pytest.mark.parametrize(
    ("start", "job", "expected_utc"),
    [
        # New York springs forward on Sunday 8 March 2026: 02:00 never happens, the clock goes 01:59 -> 03:00 EDT.
        # The 02:00 retraining runs at the first dispatch after the gap, 03:00 EDT (07:00 UTC), once.
        (_utc(2026, 3, 7, 20, 0), "retraining", [_utc(2026, 3, 8, 7, 0)]),
        # and the nightly scoring at 04:00 EDT (08:00 UTC instead of the winter's 09:00).
        (_utc(2026, 3, 7, 20, 0), "scoring", [_utc(2026, 3, 8, 8, 0)]),
        # New York falls back on Sunday 1 November 2026: 01:00-02:00 happens twice (EDT, then EST). The 01:00 drift
        # check runs the first time round only.
        (_utc(2026, 10, 31, 20, 0), "drift", [_utc(2026, 11, 1, 5, 0)]),
        # and the scoring at 04:00 EST (09:00 UTC instead of the summer's 08:00).
        (_utc(2026, 10, 31, 20, 0), "scoring", [_utc(2026, 11, 1, 9, 0)]),
    ],
)  # fmt: skip
def test_a_clinic_gets_its_nightly_work_once_on_the_days_clocks_change(db, start, job, expected_utc):
    new_york = ClinicFactory(time_zone="America/New_York")

    enqueued = _dispatch_every_15_minutes(start, hours=24)

    assert _at(enqueued, new_york, job) == expected_utc
