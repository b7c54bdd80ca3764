"""Shared API plumbing: the one place where domain errors become HTTP answers."""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, negotiation, parsers
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """Services raise Django's ValidationError and PermissionDenied; the API answers 400 and 403 with the message."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(detail=str(exc) or None)
    return drf_exception_handler(exc, context)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that a document nested deeper than Python's recursion limit (`[[[[...`, a few
    hundred kilobytes) is a 400 like any other malformed body, not a RecursionError and a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None


class JSONWhateverTheAccept(negotiation.DefaultContentNegotiation):
    """The view's first renderer when none matches the Accept header: a browser asking for `text/html` gets the
    JSON, not a 406. Views with several renderers (FHIR's) still follow the header."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            return renderers[0], renderers[0].media_type


def document_refused_addresses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation may answer 400, because
    `clinic.middleware.RefuseNulMiddleware` refuses an address with a NUL character before any view runs."""
    for operations in result["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            responses.setdefault("400", {"description": "The address contains a NUL character."})
            operation["responses"] = dict(sorted(responses.items()))
    return result


UNAUTHENTICATED = "No credentials, or a token that is unknown, expired or revoked (`WWW-Authenticate: Token`)."
THROTTLED = "Too many requests from this address or account; `Retry-After` says when to try again."


def document_authentication_answers(result, generator, request, public):
    """drf-spectacular postprocessing hook: an operation that needs credentials may answer 401 (the token class
    comes first, so DRF challenges), and every operation may answer 429 (the API's throttles)."""
    for operations in result["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            if any(requirement for requirement in operation.get("security", [{}])):
                responses.setdefault("401", {"description": UNAUTHENTICATED})
            responses.setdefault("429", {"description": THROTTLED})
            operation["responses"] = dict(sorted(responses.items()))
    return result
