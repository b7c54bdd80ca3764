from django.urls import path

from mltraining import views

app_name = "mltraining"

urlpatterns = [
    path("dashboard/", views.model_dashboard, name="dashboard"),
    path("versions/<int:pk>/card/", views.model_card, name="model_card"),
]
