"""The product's URLs plus `bench/bare/`, the load benchmark's ceiling: the least a request can cost here.

The bare view goes through the same middleware stack as every page, but reads no session, user or table.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from clinic.urls import handler500
from clinic.urls import urlpatterns as product_urlpatterns

__all__ = ["handler500", "urlpatterns"]


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare/", bare, name="bench-bare"), *product_urlpatterns]
