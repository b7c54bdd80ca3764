"""Celery beat's scheduler: django-celery-beat's, with a heartbeat file for the container's healthcheck."""

from pathlib import Path

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler


class HeartbeatScheduler(DatabaseScheduler):
    """Touches BEAT_HEARTBEAT_PATH after each tick (beat ticks at least every `max_interval`, 5 s): a beat that
    hangs, or whose ticks fail on the database, leaves the file to age and compose's healthcheck marks it
    unhealthy. Beat shows no other sign of life: it serves nothing and answers no ping."""

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        Path(settings.BEAT_HEARTBEAT_PATH).touch()
        return interval
