"""The project's URLs plus a view that fails holding patient data and one that answers 503, for the tests of
error reporting (neither touches the database)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from clinic.urls import handler500
from clinic.urls import urlpatterns as clinic_urlpatterns


@csrf_exempt  # posted to by a bare WSGI call too
def _failing(request):
    patient_name = request.POST.get("given_name", "")  # in the frame's variables when it fails
    raise RuntimeError(f"unexpected state ({len(patient_name)} characters)")


def _unavailable(request):
    return HttpResponse("Try again later.", status=503, content_type="text/plain")


urlpatterns = [path("fail/", _failing), path("fail/unavailable/", _unavailable), *clinic_urlpatterns]
__all__ = ["handler500", "urlpatterns"]
