from axes.helpers import get_cool_off
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST

from clinic import roles, services
from clinic.audit import audit_record
from clinic.forms import ClinicPasswordChangeForm, LoginForm
from clinic.health import healthz_response
from mltraining import selectors as mltraining_selectors
from patients import contact as patient_contact
from patients import selectors as patient_selectors
from recommendations import selectors as recommendation_selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "can_view_patients": roles.can_view_patients(user),
        "can_enter_results": roles.can_enter_results(user),
        "can_review_advice": roles.can_review_advice(user),
        "can_manage_clinic": roles.can_manage_clinic(user),
        "is_patient": roles.is_patient(user),
        "can_be_on_duty": roles.can_be_on_duty(user),
    }
    # What is waiting, counted without names, so each role sees at once where to start.
    if context["can_review_advice"]:
        context["queue"] = recommendation_selectors.review_queue_counts(user=user)
        context["urgent_severity"] = recommendation_selectors.URGENT
        context["imported_diagnoses"] = patient_selectors.imported_conditions_awaiting_for(user=user).count()
    if context["can_view_patients"]:
        context["critical"] = patient_selectors.critical_patient_counts(user=user)
        context["worklist"], context["worklist_total"] = patient_selectors.critical_worklist_read(user=user)
    if roles.can_handle_patient_requests(user):
        context["patient_requests"] = patient_contact.waiting_count(user=user)
    if context["can_manage_clinic"] and user.clinic_id:
        context["active_model"] = mltraining_selectors.active_model_brief(clinic_id=user.clinic_id)
    return render(request, "clinic/home.html", context)


@require_POST
@login_required
def duty_set(request: HttpRequest) -> HttpResponse:
    on_duty = request.POST.get("on_duty") == "on"
    try:
        services.user_duty_set(user=request.user, by=request.user, on_duty=on_duty)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "You are on duty." if on_duty else "You are off duty.")
    return redirect("home")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Public, for load balancers; a probe whose Host is not allowed is answered by HealthzAnyHostMiddleware."""
    return healthz_response(request, staff=request.user.is_staff)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links; they get the icon, not a 404 (a signed-in user's 404 is
    an `access.denied` audit row)."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Signing out of the portal ends every way in: the user's API tokens are revoked with the session (a script
    that must outlive its user's sessions runs under an account of its own)."""

    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            services.api_tokens_revoke_all(user=request.user, by=request.user, reason="logout")
        return super().post(request, *args, **kwargs)


def locked_out(request: HttpRequest, response: HttpResponse | None = None, credentials: dict | None = None):
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE), for its own lockout and the address throttle: 429, as
    JSON for the API and as a page for the portal, with the time to wait."""
    cooloff = get_cool_off(request)
    minutes = int(cooloff.total_seconds() // 60)
    if request.path.startswith("/api/"):
        message = f"Too many failed sign-ins. Try again in {minutes} minutes, or ask your clinic admin."
        answer = JsonResponse({"detail": message}, status=429)
    else:
        answer = render(request, "registration/locked_out.html", {"cooloff_minutes": minutes}, status=429)
    answer["Retry-After"] = str(int(cooloff.total_seconds()))
    return answer


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = ClinicPasswordChangeForm
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit_record(actor=self.request.user, action="auth.password_change", target=self.request.user)
        services.api_tokens_revoke_all(user=self.request.user, by=self.request.user, reason="password_change")
        messages.success(self.request, "Your password was changed.")
        return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: a generic page (JSON for the API) that gives the request id and nothing else.

    Rendered without context processors, sessions or the database, which may be what failed.
    """
    request_id = getattr(request, "request_id", "")
    if request.path.startswith("/api/"):
        message = "Server error. Please try again; if it persists, give your administrator the request id."
        return JsonResponse({"detail": message, "request_id": request_id}, status=500)
    page = loader.get_template("500.html").render({"request_id": request_id})
    return HttpResponse(page, status=500)
