"""CDS Hooks 2.0 endpoints at the root: discovery, the services, their feedback. Thin: verify, parse, one service.

Errors answer JSON `{"error": "..."}`: 401 for a JWT that does not verify, 400 for a body that is not the hook's,
404 for an unknown service or card, 412 when the Patient was not prefetched. The body's `fhirAuthorization` (the
EHR's access token to its FHIR server) is dropped on arrival: this service never calls the EHR's FHIR server, and
the token must not reach a log, an audit row or an error report.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from cdshooks import services
from cdshooks.auth import Unauthorized, caller_verify

_ERRORS = {services.BadRequest: 400, services.PreconditionFailed: 412, services.UnknownCard: 404}


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


@sensitive_variables("raw", "body")
def _body(request: HttpRequest) -> Any:
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        raise services.BadRequest("The body is not JSON.") from None
    if isinstance(body, dict):
        body.pop("fhirAuthorization", None)
    return body


@require_GET
def discovery(request: HttpRequest) -> JsonResponse:
    """The services this server offers; no patient data, so no JWT needed to read it."""
    return JsonResponse({"services": list(services.SERVICES.values())})


@sensitive_variables("body")
def _call(request: HttpRequest, work) -> JsonResponse:
    now = timezone.now()
    try:
        caller = caller_verify(authorization=request.headers.get("Authorization", ""), path=request.path, now=now)
        services.jti_claim(caller=caller, now=now)
    except Unauthorized as exc:
        services.auth_refused(path=request.path, reason=str(exc))
        response = _error(401, str(exc))
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    try:
        return JsonResponse(work(caller, _body(request), now))
    except tuple(_ERRORS) as exc:
        extra = {"unknown_cards": exc.cards} if isinstance(exc, services.UnknownCard) else {}
        return _error(_ERRORS[type(exc)], str(exc), **extra)


@csrf_exempt
@require_POST
def service_call(request: HttpRequest, service_id: str) -> JsonResponse:
    if service_id not in services.SERVICES:
        return _error(404, f"No CDS service {service_id!r} here; GET /cds-services lists them.")
    return _call(request, lambda caller, body, now: services.patient_view(caller=caller, body=body, now=now))


@csrf_exempt
@require_POST
def feedback(request: HttpRequest, service_id: str) -> JsonResponse:
    if service_id not in services.SERVICES:
        return _error(404, f"No CDS service {service_id!r} here; GET /cds-services lists them.")

    def work(caller, body, now):
        events = services.feedback_record(caller=caller, service_id=service_id, body=body, now=now)
        return {"recorded": len(events)}

    return _call(request, work)
