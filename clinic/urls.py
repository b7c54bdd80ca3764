from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clinic import views

handler500 = views.server_error

urlpatterns = [
    path("", views.home, name="home"),
    path("duty/", views.duty_set, name="duty"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("patients/", include("patients.urls")),
    path("patients/import/", include("patients.imports.urls")),
    path("api/v1/auth/", include("clinic.auth_api")),
    path("api/v1/", include("patients.api.urls")),
    path("api/v1/imports/", include("patients.imports.api_urls")),
    path("api/v1/fhir/", include("patients.fhir.urls")),
    path("api/v1/", include("predictions.api.urls")),
    path("api/v1/", include("recommendations.api.urls")),
    path("predictions/", include("predictions.urls")),
    path("models/", include("mltraining.urls")),
    path("advice/", include("recommendations.urls")),
    path("labfeed/", include("labfeed.urls")),
    path("", include("cdshooks.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: the Content-Security-Policy allows no inline one.
    # Our page around it: a language for screen readers and our contrast fixes (docs/ACCESSIBILITY.md).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/docs.html"),
        name="api-docs",
    ),
]
