from django.urls import path

from labfeed import views

app_name = "labfeed"

urlpatterns = [
    path("unmatched/", views.unmatched_list, name="unmatched"),
    path("unmatched/<int:pk>/", views.unmatched_detail, name="unmatched_detail"),
]
