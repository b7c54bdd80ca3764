"""The product's URLs plus the load benchmark's two reference views, never part of the product's URLs.

- `bench/bare/`, the ceiling: the least a request can cost here. It goes through the same middleware stack as
  every page, but reads no session, user or table.
- `bench/audited/`, the floor of an audited page: the least any read of patient data can cost, a signed-in user
  (the session and the user read) and one audit row written, as project rule 6 asks of every such read; no other
  query and no template.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.urls import path

from clinic.audit import audit_record
from clinic.urls import handler500
from clinic.urls import urlpatterns as product_urlpatterns

__all__ = ["handler500", "urlpatterns"]


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@login_required
def audited(request: HttpRequest) -> JsonResponse:
    audit_record(actor=request.user, action="bench.audited.view")
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/bare/", bare, name="bench-bare"),
    path("bench/audited/", audited, name="bench-audited"),
    *product_urlpatterns,
]
