from django.urls import path

from cdshooks import views

app_name = "cdshooks"

# At the root, without trailing slashes, as the specification writes them.
urlpatterns = [
    path("cds-services", views.discovery, name="discovery"),
    path("cds-services/<slug:service_id>", views.service_call, name="service"),
    path("cds-services/<slug:service_id>/feedback", views.feedback, name="feedback"),
]
