"""The project's URLs plus two views that fail, to see what a server error shows and logs."""

from django.urls import path

from clinic.urls import handler500
from clinic.urls import urlpatterns as clinic_urlpatterns
from patients.models import Patient


def _failing(request):
    patient = Patient.objects.first()  # the view had patient data in hand when it failed
    raise RuntimeError(f"unexpected state for patient #{patient.pk}")


urlpatterns = [path("boom/", _failing), path("api/v1/boom/", _failing), *clinic_urlpatterns]
__all__ = ["handler500", "urlpatterns"]
