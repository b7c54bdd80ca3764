"""Celery wiring. Settings live in clinic/settings.py under the CELERY_ namespace.

JSON only, late acknowledgement, no prefetching beyond the task at hand, and time limits on every
task: a worker killed mid-task hands the message back to the broker instead of losing it.
"""

import contextvars
import logging.config
import os

from celery import Celery, signals

from clinic.logging import LogContext, current_request_id, log_context_current, log_context_reset, log_context_set

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

app = Celery("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _logging_as_django_configures_it(**kwargs) -> None:
    """Workers and beat log as the web does (LOGGING: JSON lines in production), not in Celery's own format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _request_id_to_headers(headers: dict | None = None, **kwargs) -> None:
    """A task enqueued while serving a request carries the request's id, so its log lines can be found with it."""
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


_task_log_contexts: dict[str, contextvars.Token] = {}


@signals.task_prerun.connect
def _task_log_context_open(task_id: str = "", task=None, **kwargs) -> None:
    # An eager task (the embedded default) runs inside the request that enqueued it: it keeps its ids.
    parent = log_context_current() or LogContext()
    request_id = task.request.get("request_id") or parent.request_id
    context = LogContext(request_id=request_id or "", request=parent.request, task_id=task_id, task_name=task.name)
    _task_log_contexts[task_id] = log_context_set(context)


@signals.task_postrun.connect
def _task_log_context_close(task_id: str = "", **kwargs) -> None:
    token = _task_log_contexts.pop(task_id, None)
    if token is not None:
        log_context_reset(token)
