"""Celery wiring. Settings live in clinic/settings.py under the CELERY_ namespace.

JSON only, late acknowledgement, no prefetching beyond the task at hand, and time limits on every
task: a worker killed mid-task hands the message back to the broker instead of losing it.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

app = Celery("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
