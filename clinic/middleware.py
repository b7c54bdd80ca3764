import logging
import re
import secrets
import time
import uuid
import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, get_user, logout
from django.core.exceptions import DisallowedHost
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from clinic.audit import RequestContext, audit_record, reset_request_context, set_request_context
from clinic.health import healthz_response
from clinic.logging import LogContext, log_context_reset, log_context_set
from clinic.models import AuditOutcome

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("clinic.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Refresh the activity stamp at most this often, so an active user does not write the session per request.
_ACTIVITY_RESOLUTION = 60


class RequestContextMiddleware:
    """Give every request an id of our own, expose it to the audit trail and the logs, and write its access line.

    A client's `X-Request-ID` is its own choice: written into audit rows it would let a caller tie its requests to
    someone else's, or blur its own. So the id is ours, unless TRUST_X_REQUEST_ID says a proxy in front sets the
    header itself; a client's id (if sane) is logged beside ours and sent back as `X-Client-Request-ID`.

    First in MIDDLEWARE, so every line logged while a request is served (static files and HTTPS redirects too)
    carries its id, and its access line (`clinic.access`, replacing gunicorn's) measures the whole answer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        sane = bool(_REQUEST_ID.match(incoming))
        request.request_id = incoming if sane and settings.TRUST_X_REQUEST_ID else uuid.uuid4().hex
        client_id = incoming if sane and incoming != request.request_id else ""
        log_token = log_context_set(LogContext(request_id=request.request_id, request=request))
        token = set_request_context(
            RequestContext(ip_address=request.META.get("REMOTE_ADDR") or None, request_id=request.request_id)
        )
        try:
            if client_id:
                logger.info("request %s carries the client's id %s", request.request_id, client_id)
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id
            if client_id:
                response["X-Client-Request-ID"] = client_id
            _access_log(request, response, time.perf_counter() - started)
        finally:
            reset_request_context(token)
            log_context_reset(log_token)
        return response


def _query_names(request) -> list[str]:
    """The query string's parameter names, read from the raw string: parsing it as QueryDict could raise (too many
    fields) after the answer is made."""
    names = {part.split("=", 1)[0][:64] for part in request.META.get("QUERY_STRING", "").split("&") if part}
    return sorted(names)[:20]


def _access_log(request, response, seconds: float) -> None:
    """One line per answer. The path without its query string, whose values (a patient search, a name) can identify
    a patient: only the parameters' names are kept. Path segments that are secrets (an import's token) are
    redacted."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in match.kwargs.items() if match else ():
        if "token" in name and isinstance(value, str) and value:
            path = path.replace(value, "[redacted]")
    duration_ms = round(seconds * 1000, 1)
    access_logger.info(
        "%s %s %s %s ms", request.method, path, response.status_code, duration_ms,
        extra={
            "method": request.method, "path": path, "query_params": _query_names(request),
            "status": response.status_code, "duration_ms": duration_ms,
            "remote_addr": request.META.get("REMOTE_ADDR") or None,
        },
    )  # fmt: skip


class SecurityHeadersMiddleware:
    """A Content-Security-Policy on every answer, and `Cache-Control: no-store` on every answer to a signed-in user.

    Scripts run only from this server or with the request's nonce (`request.csp_nonce`; no page has an inline
    script now: plotly charts are JSON data drawn by static/js/charts.js); styles may be inline (plotly and
    Bootstrap's components set them).
    Pages and API answers of a signed-in user hold patient data: no browser, proxy or back button keeps them.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY.format(nonce=request.csp_nonce))
        user = getattr(request, "user", None)  # for the API, the user DRF authenticated (session or token)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class HealthzAnyHostMiddleware:
    """/healthz for a probe that addresses the container itself: compose's healthcheck asks
    http://127.0.0.1:8000/healthz, which Django would refuse with 400 DisallowedHost once ALLOWED_HOSTS is the real
    host name. So a GET whose Host is not allowed is answered here, before any middleware that validates the Host
    (CommonMiddleware, CSRF), with the public report, which builds no URL from the Host. An allowed Host goes on
    to the view, where an admin's session sees the details."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz" and request.method in ("GET", "HEAD") and not _host_allowed(request):
            return healthz_response(request, staff=False)
        return self.get_response(request)


def _host_allowed(request) -> bool:
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


class RefuseNulMiddleware:
    """400 for an address whose path or query string holds a NUL character.

    No parameter means anything with one, and PostgreSQL can neither compare nor store it: a filter, a search or
    an audit row quoting the parameter would otherwise fail with a 500. (Form and serializer fields refuse NUL
    already; this covers the parameters that views and the admin read directly.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in name or "\x00" in value for name, values in request.GET.lists() for value in values
        ):
            message = "The address contains a NUL character."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


class IdleTimeoutMiddleware:
    """Log a user out after SESSION_IDLE_TIMEOUT seconds without a request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_activity")
            if last is not None and now - last > settings.SESSION_IDLE_TIMEOUT:
                audit_record(actor=request.user, action="auth.logout.idle", detail={"idle_seconds": int(now - last)})
                logout(request)
                messages.info(request, "You were signed out after a period without activity. Please sign in again.")
            elif last is None or now - last > _ACTIVITY_RESOLUTION:
                request.session["last_activity"] = now
        return self.get_response(request)


class AccessDeniedAuditMiddleware:
    """One `access.denied` audit row for each request of a signed-in user that ends in 403 or 404.

    Someone probing other clinics' records, or pages above their role, leaves a trace. The row is written after
    the view has returned, outside its transaction (Django wraps only the view in ATOMIC_REQUESTS), so it is
    committed even when the view's work was rolled back. Any other status costs no query: the status is looked
    at before the user. For an API call, the user is the one DRF authenticated (session or token), or the
    session's own when DRF refused the request's credentials (marked `credentials: refused`).
    """

    DENIED = frozenset({403, 404})

    def __init__(self, get_response):
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code not in self.DENIED or request.path.startswith(self.static_prefix):
            return response
        detail = {"method": request.method, "path": request.path[:500], "status": response.status_code}
        if request.user.is_authenticated:
            audit_record(actor=request.user, action="access.denied", outcome=AuditOutcome.DENIED, detail=detail)
        elif (user := self._refused_session_user(request)) is not None:
            audit_record(
                actor=user, action="access.denied", outcome=AuditOutcome.DENIED,
                detail={**detail, "credentials": "refused"},
            )  # fmt: skip
        return response

    @staticmethod
    def _refused_session_user(request):
        """The signed-in user of the session when the API refused the request's credentials.

        DRF replaces the request's user by an anonymous one when authentication fails, as for a session-authenticated
        write without its CSRF token (what a forged cross-site request is) or an invalid token beside a session; the
        denial is still made in that user's session, so it is theirs in the trail. A request without a session costs
        nothing here.
        """
        session = getattr(request, "session", None)
        if session is None or SESSION_KEY not in session:
            return None
        user = get_user(request)
        return user if user.is_authenticated else None


class ClinicTimeZoneMiddleware:
    """Pages show times in the signed-in user's clinic's time zone (`Clinic.time_zone`), and times typed into forms
    are read in it; anyone else (signed out, a superuser without a clinic) sees settings.TIME_ZONE.

    The API answers in UTC whoever asks: a script that signs in with a session and one with a token see the same
    instants written the same way. The clinic comes with the user (clinic.backends.ClinicModelBackend): no query.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        clinic = None
        if not request.path.startswith("/api/") and user is not None and user.is_authenticated:
            clinic = user.clinic
        if clinic is not None:
            try:
                timezone.activate(zoneinfo.ZoneInfo(clinic.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # validated on save; a tz database may lose a name
                logger.error("Clinic %s has an unknown time zone %r; pages show %s", clinic.pk, clinic.time_zone,
                             settings.TIME_ZONE)  # fmt: skip
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
