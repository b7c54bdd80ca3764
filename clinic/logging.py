"""Logs as one JSON object a line, each carrying the id of the request (or task) it was written for.

`RequestContextMiddleware` opens a log context per request and Celery's signals one per task (clinic/celery.py);
`ContextFilter` copies the request id, the signed-in user and clinic, and the task onto every record; the
formatters write them. Nothing here imports Django models: logging is configured before the apps are loaded.
"""

import contextvars
import json
import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "request", "taskName"}
)
_CONTEXT_FIELDS = ("request_id", "user_id", "clinic_id", "task_id", "task_name")


@dataclass(frozen=True)
class LogContext:
    request_id: str = ""
    request: Any = None  # the HttpRequest, whose user is read only once something else has loaded it
    task_id: str = ""
    task_name: str = ""


_context: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar("log_context", default=None)


def log_context_set(context: LogContext) -> contextvars.Token:
    return _context.set(context)


def log_context_reset(token: contextvars.Token) -> None:
    _context.reset(token)


def log_context_current() -> LogContext | None:
    return _context.get()


def current_request_id() -> str:
    context = _context.get()
    return context.request_id if context else ""


def loaded_user(request) -> Any:
    """The request's signed-in user if authentication has already run, else None.

    A log line must never be what loads the session or queries the database: `request.user` is lazy until a view,
    a middleware or DRF (which sets the user it authenticated on the request) has looked at it.
    """
    if not isinstance(request, HttpRequest):
        return None  # none, or not Django's: runserver's `django.server` lines carry the socket as `request`
    user = vars(request).get("user")
    if user is None:
        return None
    if "_wrapped" in vars(user):  # Django's SimpleLazyObject
        user = vars(user)["_wrapped"]
        if not hasattr(user, "is_authenticated"):  # still the `empty` sentinel: not loaded
            return None
    return user if getattr(user, "is_authenticated", False) else None


class ContextFilter(logging.Filter):
    """Adds request_id, user_id, clinic_id, task_id and task_name to every record (None where unknown).

    Values a caller passed in `extra` win: the access line is written with the ids it measured.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        if context is None:
            # Django logs an answer of 400 or more after the middleware has returned, with the request in hand.
            request = getattr(record, "request", None)
            request = request if isinstance(request, HttpRequest) else None
            context = LogContext(request_id=getattr(request, "request_id", ""), request=request)
        user = loaded_user(context.request)
        known = {
            "request_id": context.request_id or None,
            "user_id": user.pk if user is not None else None,
            "clinic_id": getattr(user, "clinic_id", None) if user is not None else None,
            "task_id": context.task_id or None,
            "task_name": context.task_name or None,
        }
        for name, value in known.items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The simple values a caller passed in `extra` (objects such as Django's `request` are left out)."""
    return {
        name: value
        for name, value in vars(record).items()
        if name not in _STANDARD_ATTRIBUTES
        and name not in _CONTEXT_FIELDS
        and isinstance(value, str | int | float | bool | list | type(None))
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the context's ids, `extra` values,
    and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in _CONTEXT_FIELDS[1:]:
            if getattr(record, name, None) is not None:
                line[name] = getattr(record, name)
        line.update(_extras(record))
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a developer's terminal: the usual line, then the ids that are known in brackets."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  (logging's method name)
        ids = " ".join(
            f"{name}={getattr(record, name)}" for name in _CONTEXT_FIELDS if getattr(record, name, None) is not None
        )
        return super().formatMessage(record) + (f" [{ids}]" if ids else "")


def unhandled_errors_only(record: logging.LogRecord) -> bool:
    """Mail an exception, not every 5xx answer: /healthz answers 503 on each probe while Redis is down."""
    return record.exc_info is not None


class ErrorMailReporter:
    """What the e-mail to ADMINS says about an unhandled error: the traceback, without Django's report of the
    request (its query string, form fields, cookies and headers can hold patient data and credentials) and of the
    settings. The request id, path and user id come in the message above it (see `mail_formatter`)."""

    def __init__(self, request, exc_type, exc_value, tb, is_email=True):
        self.exc_info = (exc_type, exc_value, tb)

    def get_traceback_text(self) -> str:
        if self.exc_info[0] is None:
            return str(self.exc_info[1])
        return "".join(traceback.format_exception(*self.exc_info))

    def get_traceback_html(self) -> None:
        return None


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING setting: every line through the context filter to stderr, JSON or text; errors of requests also
    to ADMINS by e-mail (nothing is sent while ADMINS is empty or DEBUG is on)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "clinic.logging.ContextFilter"},
            "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
            "unhandled_errors_only": {"()": "django.utils.log.CallbackFilter", "callback": unhandled_errors_only},
        },
        "formatters": {
            "json": {"()": "clinic.logging.JsonFormatter"},
            "text": {"()": "clinic.logging.TextFormatter"},
            "mail": {"format": "%(message)s\n\nrequest id: %(request_id)s\nuser id: %(user_id)s"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]},
            "mail_admins": {
                "class": "django.utils.log.AdminEmailHandler",
                "level": "ERROR",
                "filters": ["context", "require_debug_false", "unhandled_errors_only"],
                "formatter": "mail",
                "reporter_class": "clinic.logging.ErrorMailReporter",
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "axes": {"level": "WARNING"},
            # Replaces Django's default handlers of its own logger, whose e-mail would carry the request's data.
            # Unhandled errors (logged by `django.request`) reach the console through the root, and are mailed.
            "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
            # Answers of 4xx are in the access line already (whose path hides tokens, which Django's "Not Found:
            # <path>" would not); 5xx answers and unhandled errors are logged.
            "django.request": {"level": "ERROR"},
        },
    }


def sentry_init(*, dsn: str, environment: str) -> None:
    """Report unhandled errors of the web, the workers and beat to Sentry, without patient data: no request bodies,
    cookies, headers, query strings or local variables leave the process (`sentry_scrub`)."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        traces_sample_rate=0.0,
        before_send=sentry_scrub,
    )


def sentry_scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """What an event keeps of the request: its method and the address without its query string, which can name a
    patient. Of the user, the id; of a task, its name. Frames lose their variables even if a later setting turned
    them on. The request id joins the event to the log lines of the same request."""
    request = event.get("request")
    if request:
        event["request"] = {key: request[key] for key in ("method", "url") if key in request}
        if "url" in event["request"]:
            event["request"]["url"] = event["request"]["url"].split("?", 1)[0]
    if "user" in event:
        event["user"] = {key: value for key, value in event["user"].items() if key == "id"}
    job = (event.get("extra") or {}).get("celery-job")
    if job:
        event["extra"]["celery-job"] = {"task_name": job.get("task_name")}  # not its arguments
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    request_id = current_request_id()
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    return event
