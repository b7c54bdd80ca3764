"""Settings for the clinic platform.

Everything comes from environment variables (documented in `.env.example`). Without any of them the
project runs as the embedded default: SQLite in `var/`, Celery tasks eagerly in-process, local-memory
cache. `DJANGO_ENV=production` turns on the deployment checks and refuses unsafe configurations.
"""

import importlib.util
import os
import secrets
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from clinic.logging import logging_config, sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


ENVIRONMENT = os.environ.get("DJANGO_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'development' or 'production', not {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("Refusing to start: DEBUG is on with DJANGO_ENV=production.")


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("Refusing to start: SECRET_KEY is not set and DJANGO_ENV=production.")
    # Development: a random key kept in var/ so sessions survive restarts; never committed.
    path = VAR_DIR / "dev_secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("Refusing to start: SECRET_KEY must be at least 50 characters in production.")


def _audit_hmac_key() -> str:
    """The key of the audit trail's hash chain. Kept out of the database, so whoever owns the audit table cannot
    re-hash rows they changed; kept as carefully as SECRET_KEY and never changed (rows written with one key are
    verified with it)."""
    key = os.environ.get("AUDIT_HMAC_KEY", "")
    if key:
        if PRODUCTION and len(key) < 32:
            raise ImproperlyConfigured("Refusing to start: AUDIT_HMAC_KEY must be 32 characters or more in production.")
        return key
    if PRODUCTION:
        raise ImproperlyConfigured(
            "Refusing to start: AUDIT_HMAC_KEY is not set and DJANGO_ENV=production. Without a key of its own, "
            "the audit trail could be rewritten by the database's owner without `audit_verify` noticing."
        )
    # Development: a random key kept in var/, as the secret key is.
    path = VAR_DIR / "dev_audit_hmac_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


AUDIT_HMAC_KEY = _audit_hmac_key()
# Where the audit chains' heads are checkpointed (signed with AUDIT_HMAC_KEY), outside the database: by beat every
# AUDIT_CHECKPOINT_MINUTES and by `audit_verify --checkpoint`. Put it where the database's owner cannot write
# (another volume, a host the database server cannot reach) and back it up.
AUDIT_CHECKPOINT_PATH = Path(os.environ.get("AUDIT_CHECKPOINT_PATH") or VAR_DIR / "audit-checkpoint.json")
AUDIT_CHECKPOINT_MINUTES = env_int("AUDIT_CHECKPOINT_MINUTES", 15)
# PostgreSQL: the audit table's monthly partitions are made this many months ahead, daily by beat.
AUDIT_PARTITION_MONTHS_AHEAD = env_int("AUDIT_PARTITION_MONTHS_AHEAD", 3)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Refusing to start: ALLOWED_HOSTS is empty and DJANGO_ENV=production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "bootstrap",
    "crispy_forms",
    "crispy_bootstrap5",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "clinic",
    "patients",
    "predictions",
    "recommendations",
    "mltraining",
    "labfeed",
    "cdshooks",
]

MIDDLEWARE = [
    "clinic.middleware.RequestContextMiddleware",  # first: the request id and the access line cover every answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "clinic.middleware.SecurityHeadersMiddleware",
    # Before anything that validates the Host header: container healthchecks call http://127.0.0.1:8000/healthz.
    "clinic.middleware.HealthzAnyHostMiddleware",
    "clinic.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clinic.middleware.ClinicTimeZoneMiddleware",
    "clinic.middleware.AccessDeniedAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "clinic.middleware.IdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Axes must come last so it sees the final response of a failed login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"
ASGI_APPLICATION = "clinic.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clinic.context_processors.navigation",
            ],
        },
    },
]

# Database: SQLite in var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take the write lock at BEGIN: concurrent writers wait instead of failing on lock upgrade.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is both the Celery broker and the cache; without it tasks run in-process and the cache is local.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "clinic.cache.RedisCache",  # one redis client, not one per call
            "LOCATION": REDIS_URL,
            # Each pytest-xdist process keeps its own keys (its database is its own too).
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "clinic") + os.environ.get("PYTEST_XDIST_WORKER", ""),
            # A Redis that does not answer is a cache miss within a second, not a request held (clinic/cache.py).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
    # Sessions are read from Redis and written through to the database: no session query per request, a Redis
    # restart signs nobody out, and while Redis is down sessions are read from the database (clinic/cache.py).
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery (read by clinic/celery.py with the CELERY_ namespace).
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # a host named, or kombu warns on every eager task
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the database rows a task writes are the truth, not its result
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660)
# With acks_late, a task not acknowledged within this window (its worker died) is redelivered. Keep it above
# the hard limit: a redelivery of a task still running elsewhere is harmless (chunks lock their row), only wasted.
# Workers sweep for such tasks every CELERY_UNACKED_RESTORE_INTERVAL seconds (one Redis scan per sweep).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 600),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 60),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# When Redis goes away mid-task, let the task finish: its acknowledgement is lost, so it is redelivered after the
# visibility timeout and finds its work done. Pinned because Celery 6 turns cancelling on by default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TIMEZONE = "UTC"
# Queues by kind of work, so a long job never delays what a clinician waits for: `training` (runs of up to 11
# minutes), `batch` (nightly and admin-started scoring, drift, imports, the audit's full check), `interactive`
# (scoring after new results, dashboard figures) and `default` (the minute-by-minute housekeeping: outbox,
# escalation of critical results, sweeps). Every task is named here (clinic/tests/test_routing.py keeps it so);
# `make worker` takes them all on one box, `make worker-training` and the others one kind each.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    name: {"queue": queue}
    for queue, names in {
        "training": [
            "mltraining.tasks.train_model_task",
            "mltraining.tasks.scheduled_retraining",
            "mltraining.tasks.clinic_retraining",
        ],
        "batch": [
            "predictions.tasks.score_chunk",
            "predictions.tasks.score_all_clinics",
            "predictions.tasks.clinic_batch_scoring",
            "mltraining.tasks.drift_check_all",
            "mltraining.tasks.clinic_drift_check",
            "recommendations.tasks.rebuild_ranker",
            "recommendations.tasks.rebuild_rankers",
            "patients.tasks.import_job_run",
            "clinic.tasks.verify_audit_chain",
        ],
        "interactive": ["predictions.tasks.predict_patients", "patients.tasks.dashboard_figure_refresh"],
        "default": [
            "clinic.tasks.outbox_drain",
            "clinic.tasks.audit_checkpoint",
            "clinic.tasks.audit_partitions_ensure",
            "clinic.tasks.nightly_dispatch",
            "patients.tasks.escalate_critical_results",
            "patients.tasks.resume_stalled_import_jobs",
            "predictions.tasks.resume_stalled_batches",
            "predictions.tasks.requeue_lost_chunks",
            "mltraining.tasks.resume_queued_runs",
        ],
    }.items()
    for name in names
}
# django-celery-beat's DatabaseScheduler, touching BEAT_HEARTBEAT_PATH on each tick for beat's healthcheck.
CELERY_BEAT_SCHEDULER = "clinic.beat:HeartbeatScheduler"
BEAT_HEARTBEAT_PATH = Path(os.environ.get("BEAT_HEARTBEAT_PATH", VAR_DIR / "beat-heartbeat"))
# Defaults that beat copies into the database on start; admins edit them under "Periodic tasks".
CELERY_BEAT_SCHEDULE = {
    "verify-audit-chain-nightly": {"task": "clinic.tasks.verify_audit_chain", "schedule": crontab(hour=2, minute=30)},
    # The audit chains' heads, signed, in a file outside the database: a later cut or rewrite cannot go unnoticed.
    "checkpoint-audit-chain": {
        "task": "clinic.tasks.audit_checkpoint",
        "schedule": crontab(minute=f"*/{AUDIT_CHECKPOINT_MINUTES}"),
    },
    # PostgreSQL: next months' partitions of the audit table, made well before a row needs them.
    "audit-partitions-daily": {"task": "clinic.tasks.audit_partitions_ensure", "schedule": crontab(hour=3, minute=10)},
    # Messages written while Redis was down (clinic.outbox) are sent within a minute of its return.
    "drain-outbox": {"task": "clinic.tasks.outbox_drain", "schedule": crontab(minute="*")},
    # Critical results nobody acknowledged are e-mailed to the on-duty doctors, then the clinic's escalation contact.
    "escalate-critical-results": {"task": "patients.tasks.escalate_critical_results", "schedule": crontab(minute="*")},
    # Each clinic's nightly and weekly work (rankers, scoring, drift, retraining) at its own local night: the
    # dispatcher enqueues what is due by each clinic's clock, once per local date (clinic.schedules.NIGHTLY_JOBS).
    "nightly-dispatch": {"task": "clinic.tasks.nightly_dispatch", "schedule": crontab(minute="*/15")},
    # Work whose messages were lost is sent again: batches' chunks, queued training runs and import jobs (the
    # services' batches_resume_stalled, training_runs_resume_queued and import_jobs_resume_stalled).
    "resume-stalled-batches": {
        "task": "predictions.tasks.resume_stalled_batches",
        "schedule": crontab(minute="*/10"),
    },
    # A chunk whose worker died mid-chunk is sent again within minutes (predictions.services.chunks_requeue_lost).
    "requeue-lost-chunks": {"task": "predictions.tasks.requeue_lost_chunks", "schedule": crontab(minute="*")},
    "resume-queued-training-runs": {
        "task": "mltraining.tasks.resume_queued_runs",
        "schedule": crontab(minute="5-59/10"),
    },
    "resume-stalled-import-jobs": {
        "task": "patients.tasks.resume_stalled_import_jobs",
        "schedule": crontab(minute="7-59/10"),
    },
}

# E-mail (patients.escalation: critical results left unacknowledged). Without EMAIL_HOST, as in the embedded
# default, messages are printed to the console instead of sent.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587 if env_bool("EMAIL_USE_TLS", default=False) else 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)  # seconds: a server that hangs fails the attempt, retried next minute
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "clinic@localhost")
# The portal's address as its users reach it: the links in e-mails point there.
PORTAL_URL = os.environ.get("PORTAL_URL", "http://localhost:8000").rstrip("/")
# CDS Hooks: our base URL as EHRs call it (a JWT's `aud` is <this>/cds-services/<service>), unless an EHR connection
# names its own; the card links to patient pages use PORTAL_URL.
CDS_HOOKS_BASE_URL = os.environ.get("CDS_HOOKS_BASE_URL", PORTAL_URL).rstrip("/")

# Authentication
AUTH_USER_MODEL = "clinic.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    # Both refuse before the password is hashed: first an address with too many recent failures, then a locked
    # username-and-address pair.
    "clinic.backends.AddressThrottleBackend",
    "axes.backends.AxesStandaloneBackend",
    "clinic.backends.ClinicModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Lockout: 5 failures for one username from one IP lock that pair (not the username everywhere, so an
# attacker cycling usernames from one address cannot lock out everyone) for a cool-off period.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_LOCKOUT_CALLABLE = "clinic.views.locked_out"  # the template for pages, JSON for the API, both 429
# Password spraying (one guess for each of many usernames) never trips the per-username lockout, and each guess
# costs an Argon2 hash. An address with this many failures within the cool-off time is refused before any hash
# (clinic.backends.AddressThrottleBackend). High enough for a clinic whose staff share one address.
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)
AXES_VERBOSE = False

# Sessions: logged out after 30 idle minutes (HIPAA automatic logoff); the cookie lives at most 12 hours.
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 30 * 60)
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# API tokens (django-rest-knox): stored as SHA-512 digests, one new token per `POST /api/v1/auth/token/`. Like a
# session, a token dies after SESSION_IDLE_TIMEOUT without use (each use pushes its expiry on, written at most once
# a minute) and lives at most API_TOKEN_MAX_AGE seconds however busy. Revoked by the API's logout endpoints, a
# portal sign-out and a password change (clinic.services.api_tokens_revoke_all).
API_TOKEN_MAX_AGE = env_int("API_TOKEN_MAX_AGE", SESSION_COOKIE_AGE)
REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=SESSION_IDLE_TIMEOUT),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": timedelta(seconds=API_TOKEN_MAX_AGE),
    "MIN_REFRESH_INTERVAL": 60,
    "AUTH_HEADER_PREFIX": "Token",
}

# Security headers; the HTTPS-only ones are on in production.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# No inline script without the request's nonce, nothing from another origin (clinic.middleware).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# A client's X-Request-ID is kept out of the audit trail unless a proxy in front sets (overwrites) the header.
TRUST_X_REQUEST_ID = env_bool("TRUST_X_REQUEST_ID", default=False)
# Monitoring that sends `X-Healthz-Token: <this>` gets /healthz in full (worker host names); empty: admins only.
HEALTHZ_TOKEN = os.environ.get("HEALTHZ_TOKEN", "")
# /healthz is probed over plain HTTP by load balancers and compose healthchecks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
# The portal is in English only: without the translation machinery each date, number and URL a page formats
# skips a per-thread language lookup (about a tenth of a page's template time). Formats stay en-us.
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing root before collectstatic
# plotly's JavaScript is served from the installed wheel, as static/plotly/plotly.min.js (no CDN).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# Model registry: where artifacts and plots were kept before they moved into the database (read only by
# `manage.py import_model_files`), and the promotion gate of a newly trained version.
MODEL_DIR = Path(os.environ.get("MODEL_DIR") or VAR_DIR / "models")
MODEL_PROMOTION_TOLERANCE = env_float("MODEL_PROMOTION_TOLERANCE", 0.01)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    # The token class first: a request without credentials gets 401 and `WWW-Authenticate: Token`, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clinic.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Per address for anonymous callers, per account for signed-in ones; the lockout above guards the passwords.
    "DEFAULT_THROTTLE_CLASSES": ["clinic.throttling.AnonRateThrottle", "clinic.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "120/minute"),
        "user": os.environ.get("API_THROTTLE_USER", "6000/minute"),
    },
    "EXCEPTION_HANDLER": "clinic.api.exception_handler",
    # JSON only, whatever the Accept header: DRF's browsable API rendered forms and filters that the views (which
    # scope every queryset to the user) do not offer, and answered a browser with a 500. Swagger UI is at /api/docs/.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "clinic.api.JSONWhateverTheAccept",
    "DEFAULT_PARSER_CLASSES": [
        "clinic.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clinic platform API",
    "DESCRIPTION": "Patients, lab results, predictions (decision support) and clinician-approved advice.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Deep links put a link inside each operation's button, which screen readers cannot use (axe: nested-interactive).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "REDOC_DIST": "SIDECAR",
    # One name for a choice set used by several fields.
    "ENUM_NAME_OVERRIDES": {
        "OverrideReasonEnum": "recommendations.models.OverrideReason",
        # what a reviewer may choose now: the stored reasons less the legacy ones
        "OfferedOverrideReasonEnum": "recommendations.models.OFFERED_OVERRIDE_REASONS",
        "CriticalInterpretationEnum": "patients.clinical.CRITICAL_CHOICES",
        # a condition's verification status and what its imported file said share one enum
        "VerificationStatusEnum": "patients.models.VerificationStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinic.api.document_refused_addresses",
        "clinic.api.document_authentication_answers",
    ],
}

# Logs: one JSON object a line on stderr in production (clinic/logging.py), readable text in development; every line
# of a request or task carries its id. Unhandled errors are e-mailed to ADMINS ("Name <address>, ...").
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("json" if PRODUCTION else "text")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'text', not {LOG_FORMAT!r}")
LOGGING = logging_config(log_format=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO"))
ADMINS = [parseaddr(entry) for entry in env_list("ADMINS")]
if any("@" not in address for _, address in ADMINS):
    raise ImproperlyConfigured("ADMINS must be a comma-separated list of 'Name <address>' or addresses.")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL") or DEFAULT_FROM_EMAIL
# With a DSN, unhandled errors of web, workers and beat also go to Sentry, scrubbed of patient data.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    sentry_init(dsn=SENTRY_DSN, environment=os.environ.get("SENTRY_ENVIRONMENT") or ENVIRONMENT)
