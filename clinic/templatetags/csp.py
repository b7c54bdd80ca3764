"""Template helpers for the Content-Security-Policy (clinic.middleware.SecurityHeadersMiddleware)."""

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def with_nonce(html: SafeString, request) -> SafeString:
    """Markup with inline scripts (a plotly chart's `<script>` that draws it as the page parses), each given the
    request's nonce so that the policy lets it run. Only the markup's own tags match: plotly writes `<` inside the
    chart's data as `\\u003c`. A page rendered outside a request (no nonce, no policy) keeps its markup."""
    nonce = getattr(request, "csp_nonce", "")
    if not nonce:
        return html
    return mark_safe(html.replace("<script>", f'<script nonce="{nonce}">'))  # noqa: S308  (the nonce is URL-safe)
