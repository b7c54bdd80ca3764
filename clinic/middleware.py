import re
import time
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout

from clinic.audit import RequestContext, audit_record, reset_request_context, set_request_context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Refresh the activity stamp at most this often, so an active user does not write the session per request.
_ACTIVITY_RESOLUTION = 60


class RequestContextMiddleware:
    """Give every request an id (or keep a sane one from the proxy) and expose it to the audit trail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = set_request_context(
            RequestContext(ip_address=request.META.get("REMOTE_ADDR") or None, request_id=request.request_id)
        )
        try:
            response = self.get_response(request)
        finally:
            reset_request_context(token)
        response["X-Request-ID"] = request.request_id
        return response


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
