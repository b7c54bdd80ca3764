"""The staff portal for patients: thin views over `patients.selectors` (reads, scoped) and `patients.services`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import wraps
from html import escape as html_escape
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.forms.models import model_to_dict
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from clinic import roles
from clinic.charts import SvgChart, download
from clinic.models import User
from patients import dashboard, portal, selectors, services
from patients.catalog import catalog
from patients.catalog_data import unit_label
from patients.clinical import age_on, critical_text, off_limit_decimals, reference_range
from patients.forms import (
    AllergyForm,
    ConditionForm,
    MedicationForm,
    ObservationAmendForm,
    PanelForm,
    PatientFilterForm,
    PatientForm,
    PatientRegistrationForm,
    attach_errors,
)
from patients.models import (
    ACKNOWLEDGEMENT_NOTE_MAX,
    AnalyteKind,
    Interpretation,
    Observation,
    ObservationStatus,
    Patient,
    Sex,
)
from patients.results import ResultRow, result_row, trend_chart
from patients.selectors import ABNORMAL, CRITICAL
from predictions.views import risk_card
from recommendations.models import ItemStatus
from recommendations.views import advice_card

PAGE_SIZE = 25
COMPUTING_RETRY_SECONDS = 5  # the dashboard asks this often whether a worker has computed its figures
SORTABLE = [("Name", "name"), ("MRN", "mrn"), ("Date of birth", "birth_date"), ("Registered", "created")]


def capability_required(allowed: Callable[[User], bool]):
    """403 for signed-in users whose role lacks the capability (pages that are not about one patient)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not allowed(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorator


def _submit(form: Form, write: Callable[[dict[str, Any]], Any]) -> Any | None:
    """Call the service with the cleaned data; its validation errors go back onto the form."""
    if not form.is_valid():
        return None
    try:
        return write(form.cleaned_data)
    except ValidationError as error:
        attach_errors(form, error)
        return None


@capability_required(roles.can_view_patients)
def patient_list(request: HttpRequest) -> HttpResponse:
    filters = PatientFilterForm(request.GET or None)
    arguments = filters.search_arguments()
    page = Paginator(selectors.patient_list_rows(user=request.user, **arguments), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    selectors.patient_list_read(
        user=request.user, filters={**arguments, "page": page.number}, count=page.paginator.count
    )
    today = timezone.localdate()
    rows = [(patient, age_on(patient.birth_date, today)) for patient in page]
    flagged = selectors.latest_flagged_values(patient_ids=[patient.pk for patient, _age in rows],
                                              critical=arguments["critical"])  # fmt: skip
    ordering = arguments["ordering"]
    columns = [
        {"label": label, "sort": f"-{key}" if ordering == key else key, "active": ordering.lstrip("-") == key}
        for label, key in SORTABLE
    ]
    context = {
        "filters": filters,
        "page": page,
        "rows": rows,
        "rows_html": _patient_rows(rows, flagged),
        "columns": columns,
        "descending": ordering.startswith("-"),
        "flagged_heading": "Critical values" if arguments["critical"] else "Abnormal values",
        "can_enter_results": roles.can_enter_results(request.user),
    }
    return render(request, "patients/list.html", context)


PATIENT_ROW = (
    '<tr><td><a href="{}">{}, {}</a></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
    "<td>{}</td></tr>"
)
FLAGGED_SHOWN = 3  # values named in a row; the rest are counted ("and 2 more") and read on the patient's page
FLAGGED_CLASSES = {
    "LL": "text-danger fw-semibold", "HH": "text-danger fw-semibold",
    "L": "text-warning-emphasis", "H": "text-warning-emphasis",
}  # fmt: skip
FLAG_WORDS = {value: label.lower() for value, label in Interpretation.choices}
SEX_LABELS = dict(Sex.choices)


def _flagged_values(values: list[selectors.FlaggedValue], sex: str, age: int) -> str:
    """The list's cell of a patient's latest abnormal values, "Potassium 6.8 mmol/L critically high": flags as words,
    critical ones first and in red, each value at its analyte's precision and never rounded onto a limit. HTML,
    escaped (see `_patient_rows`)."""
    shown = "; ".join(
        f'<span class="{FLAGGED_CLASSES[flag]}">{html_escape(_flagged_text(analyte_id, value, flag, sex, age))}</span>'
        for analyte_id, value, flag in values[:FLAGGED_SHOWN]
    )
    more = len(values) - FLAGGED_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _flagged_text(analyte_id: int, value: float, flag: str, sex: str, age: int) -> str:
    analyte = catalog().by_id[analyte_id]  # the list reads no analyte row (`latest_flagged_values`)
    rng = reference_range(analyte, sex, age)  # the patient's range today, as `selectors.reference_range_for`
    limits = [analyte.critical_low, analyte.critical_high, *((rng.low, rng.high) if rng else ())]
    decimals = off_limit_decimals(value, analyte.decimals, limits)
    return f"{analyte.name} {value:.{decimals}f} {unit_label(analyte.code, analyte.unit)} {FLAG_WORDS[flag]}"


def _patient_rows(rows: list[tuple[Any, int]], flagged: dict[int, list[selectors.FlaggedValue]]) -> SafeString:
    """The list's table rows, escaped as a template would: built here, as the admin builds its changelist rows,
    because a template loop's tags and filters cost about 0.1 ms a row, a large share of the page's own work
    (bench/README.md). Every value is escaped with `html.escape`, which is what Django's `escape` applies, without
    the lazy-string checks of `format_html` around each of the 25 rows' dozen values. The patient's address is
    reversed once for the page, not once a row, and the clinic's time zone looked up once."""
    detail = reverse("patients:detail", args=[0]).removesuffix("0/")  # ".../patients/" + "<pk>/"
    zone = timezone.get_current_timezone()
    html = "\n".join(
        PATIENT_ROW.format(
            html_escape(f"{detail}{patient.pk}/"),
            html_escape(patient.family_name),
            html_escape(patient.given_name),
            html_escape(patient.mrn),
            patient.birth_date.isoformat(),
            patient.created_at.astimezone(zone).date().isoformat(),
            age,
            html_escape(SEX_LABELS.get(patient.sex, patient.sex)),
            _flagged_values(flagged.get(patient.pk, []), patient.sex, age),  # escaped there
        )
        for patient, age in rows
    )
    return mark_safe(html)  # noqa: S308  (every value above is escaped)


RESULT_ROW = (
    '<tr><td>{}</td><td class="text-nowrap">{}{}</td><td><span class="badge {}" title="{}">{}</span> '
    '<span class="visually-hidden">{}</span></td><td class="text-nowrap">{}</td><td class="text-nowrap small">{}{}</td>'
    "{}</tr>"
)
OUT_OF_DATE = (
    ' <span class="badge text-bg-secondary" title="{}" data-testid="out-of-date">out of date</span>'
    '<span class="visually-hidden"> {}</span>'
)
CORRECT_LINK = '<td><a class="small" href="{}" aria-label="Correct or withdraw {} {}">Correct</a></td>'


def _result_rows(patient: Patient, rows: list[ResultRow], can_correct: bool) -> SafeString:
    """A panel's table rows on the patient page, escaped as a template would: built here, as the list's rows are
    (`_patient_rows`), because the template loop's tags and filters were a large share of the page's own work. The
    correction link is reversed once for the page, not once a row."""
    amend = reverse("patients:observation_amend", args=[patient.pk, 0]).removesuffix("/0/amend/")  # ".../results"
    return format_html_join(
        "\n",
        RESULT_ROW,
        (
            (
                row.name,
                row.value,
                format_html(' <span class="text-body-secondary">({})</span>', row.entered) if row.entered else "",
                row.badge,
                row.flag_label,
                row.flag or "—",
                row.flag_label,
                row.reference,
                timezone.localtime(row.effective_at).strftime("%Y-%m-%d %H:%M"),
                format_html(OUT_OF_DATE, row.out_of_date, row.out_of_date) if row.out_of_date else "",
                format_html(CORRECT_LINK, f"{amend}/{row.pk}/amend/", row.name, row.value) if can_correct else "",
            )
            for row in rows
        ),
    )  # fmt: skip


def _amended_rows(patient: Patient, amended: list[Observation]) -> list[dict[str, Any]]:
    """The corrected and withdrawn results, each with its old value (shown struck through), why, who and when."""
    rows = []
    for observation in amended:
        by = observation.amended_by
        rows.append({
            "name": observation.analyte.name,
            "old": result_row(patient, observation, None).value,
            "new": result_row(patient, observation.replaced_by, None).value if observation.replaced_by else "",
            "status": observation.get_status_display(),
            "reason": observation.amend_reason,
            "by": (by.get_full_name() or by.username) if by else "the lab's feed",
            "at": observation.amended_at,
            "effective_at": observation.effective_at,
        })  # fmt: skip
    return rows


def _critical_banner(
    patient: Patient, latest: list[Observation], latest_critical: list[ResultRow], waiting: list[Observation]
) -> list[ResultRow]:
    """Every critical value no doctor has acknowledged, whatever its time and the most severe first (one taken
    before a normal value of the same test, imported after it, must not hide behind it), each saying which result
    came later; then the latest critical values already acknowledged."""
    latest_of = {o.analyte_id: o for o in latest}
    rows = []
    for observation in waiting:
        newer = latest_of.get(observation.analyte_id)
        later = ""
        if newer is not None and newer.pk != observation.pk:
            shown, when = result_row(patient, newer, None), timezone.localtime(newer.effective_at)
            later = f"{shown.value} ({shown.flag_label.lower()}), {date_format(when, 'j M Y H:i')}"
        rows.append(dataclasses.replace(result_row(patient, observation, None), later=later))
    waiting = {row.pk for row in rows}
    return rows + [row for row in latest_critical if row.pk not in waiting]


def _flow(latest: list[Observation], risk: dict[str, Any] | None, advice: dict[str, Any] | None,
          critical_waiting: int = 0) -> dict[str, Any]:  # fmt: skip
    """From results to review in four steps, from what the page already read (no query of its own). Step 1 also
    counts the critical values no doctor has acknowledged, older ones hidden behind a later normal value included:
    "all in range" must never stand above a critical result still waiting."""
    measured = [o for o in latest if o.analyte.kind != AnalyteKind.WEARABLE]
    shown = risk["shown"] if risk else None
    rec = advice.get("rec") if advice else None
    statuses = [row["item"].status for row in advice["rows"]] if rec else []
    return {
        "results_at": max((o.effective_at for o in measured), default=None),
        "results": len(measured),
        "abnormal": sum(o.interpretation in ABNORMAL for o in measured),
        "critical_waiting": critical_waiting,
        "prediction": shown,
        "failed": risk["latest_failed"] if risk else None,  # why step 2 has no prediction to show
        "insufficient": risk["insufficient"] if risk else None,
        "rec": rec,
        "pending": statuses.count(ItemStatus.PENDING),
        "approved": statuses.count(ItemStatus.APPROVED),
        "rejected": statuses.count(ItemStatus.REJECTED),
    }


def _radar(user: User, patient: Patient, latest: list[Observation]) -> SvgChart | None:
    if not roles.can_view_patients(user):
        return None
    medians = dashboard.clinic_medians(clinic_id=patient.clinic_id, codes=list(dashboard.RADAR_LABS))
    return dashboard.patient_radar_chart(patient=patient, latest=latest, medians=medians)


@login_required
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_read(user=request.user, pk=pk)
    if roles.is_patient(request.user):  # a patient's own record: their results in plain words
        return portal.results_page(request, patient)
    results = selectors.patient_results(patient=patient)
    by_panel, series, apart = results.by_panel, results.series, results.apart
    latest = [observation for _key, _label, observations in by_panel for observation in observations]
    radar = _radar(request.user, patient, latest)
    if radar is not None and (csv := download(request, [radar], prefix=f"patient-{patient.pk}")) is not None:
        return csv
    can_correct = roles.can_enter_results(request.user)
    panels = []
    for key, label, observations in by_panel:
        rows = [
            result_row(patient, o, trend_chart(patient, o.analyte.code, series[o.analyte.code])) for o in observations
        ]
        panels.append({"key": key, "label": label, "rows": rows, "charts": [r.chart for r in rows if r.chart],
                       "rows_html": _result_rows(patient, rows, can_correct)})  # fmt: skip
    critical = [row for panel in panels for row in panel["rows"] if row.flag in CRITICAL]
    critical_names = [row.name for row in critical]
    measured = {o.analyte.code: o.effective_at for o in latest}
    risk = risk_card(user=request.user, patient=patient, critical=critical_names, measured=measured)  # None: a patient
    advice = advice_card(user=request.user, patient=patient)  # approved items only for the patient
    banner = _critical_banner(patient, latest, critical, apart.critical_waiting) if risk is not None else []
    critical_waiting = sum(not row.acknowledged for row in banner)
    context = {
        "patient": patient,
        "age": age_on(patient.birth_date, timezone.localdate()),
        "panels": panels,
        "conditions": selectors.condition_list_for(user=request.user, patient=patient),
        "medications": patient.medications.all(),
        "allergies": patient.allergies.all(),
        "wearables": _wearable_rows(selectors.wearable_averages(series=series)),
        "entry_panels": selectors.PANELS,
        "can_enter_results": can_correct,
        "risk": risk,
        "advice": advice,
        "radar": radar,
        "flagged": [  # labs and vitals, as the flow counts them (a wearable's daily values are not tests)
            row for panel in panels if panel["key"] != "wearable" for row in panel["rows"] if row.flag in ABNORMAL
        ],
        "critical": banner,
        "critical_waiting": critical_waiting,
        "can_acknowledge": roles.can_acknowledge_critical_results(request.user),
        "can_confirm_diagnosis": roles.can_confirm_diagnosis(request.user),
        "note_max": ACKNOWLEDGEMENT_NOTE_MAX,
        "flow": _flow(latest, risk, advice, critical_waiting) if risk is not None else None,  # clinical roles only
        "amended": _amended_rows(patient, apart.amended),
        "preliminary": [result_row(patient, o, None) for o in apart.preliminary],
    }
    return render(request, "patients/detail.html", context)


@capability_required(roles.can_view_dashboards)
def population_dashboard(request: HttpRequest) -> HttpResponse:
    board = dashboard.population_dashboard_read(user=request.user, download=request.GET.get("download", ""))
    context = {
        "board": board,
        "max_age_minutes": dashboard.DASHBOARD_MAX_AGE // 60,
        "retry_seconds": COMPUTING_RETRY_SECONDS,
    }
    if board is None:
        if request.GET.get("download"):
            response = HttpResponse(
                "The figures are being computed; try again in a few seconds.", status=503, content_type="text/plain"
            )
            response["Retry-After"] = str(COMPUTING_RETRY_SECONDS)
            return response
        context["waiting"] = dashboard.population_dashboard_waiting(user=request.user)
    elif (csv := download(request, board.charts, prefix="population")) is not None:
        return csv
    return render(request, "patients/dashboard.html", context)


@capability_required(roles.can_view_dashboards)
@require_GET
def population_dashboard_status(request: HttpRequest) -> JsonResponse:
    """What the dashboard page polls while its figures are computed: whether they are there (no figures in it)."""
    waiting = dashboard.population_dashboard_waiting(user=request.user)
    if waiting is None:
        return JsonResponse({"finished": True, "message": "The figures are ready."})
    message = "No task worker has brought the figures yet." if waiting.late else "The figures are being computed."
    return JsonResponse({"finished": False, "message": message})


def _wearable_rows(averages: dict[str, float | None]) -> list[dict[str, str]]:
    """30-day wearable means as display rows; empty when the patient has no tracker data."""
    if all(mean is None for mean in averages.values()):
        return []
    specs = catalog().by_code
    return [
        {
            "name": specs[code].name,
            "value": "—" if mean is None else f"{mean:,.{specs[code].decimals}f} {unit_label(code, specs[code].unit)}",
        }
        for code, mean in averages.items()
    ]


def _form_page(request: HttpRequest, form: Form, title: str, patient: Patient | None = None) -> HttpResponse:
    if patient is not None:
        selectors.patient_form_read(user=request.user, patient=patient, form=request.resolver_match.url_name)
    return render(request, "patients/form.html", {"form": form, "title": title, "patient": patient})


@capability_required(roles.can_enter_results)
def patient_create(request: HttpRequest) -> HttpResponse:
    form = PatientRegistrationForm(request.POST or None)
    if form.is_valid():
        try:
            patient = services.patient_create(by=request.user, **form.cleaned_data)
        except services.LikelyDuplicates as found:
            selectors.patient_likely_duplicates_read(user=request.user, duplicates=found.duplicates)
            form.show_likely_duplicates(found.duplicates)
        except ValidationError as error:
            attach_errors(form, error)
        else:
            messages.success(request, f"{patient.full_name} was registered.")
            return redirect("patients:detail", pk=patient.pk)
    return _form_page(request, form, "Register a patient")


@login_required
def patient_edit(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_get_for_change(user=request.user, pk=pk)
    # Bound to a copy of the values, not the instance: the service compares old and new to audit the change.
    initial = model_to_dict(patient, fields=PatientForm._meta.fields)
    form = PatientForm(request.POST or None, initial=initial, submit="Save changes")
    if _submit(form, lambda data: services.patient_update(patient=patient, by=request.user, **data)):
        messages.success(request, "The patient's record was updated.")
        return redirect("patients:detail", pk=patient.pk)
    return _form_page(request, form, f"Edit {patient.full_name}", patient)


def _critical_values(observations: list[Observation]) -> str:
    spec_of = catalog().by_id
    return "; ".join(critical_text(spec_of[o.analyte_id], o.value, o.interpretation) for o in observations)


@require_POST
@login_required
def critical_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_get_for(user=request.user, pk=pk)
    try:
        acknowledged = services.critical_results_acknowledge(
            patient=patient, by=request.user, note=request.POST.get("note", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("patients:detail", pk=patient.pk)
    if acknowledged:
        messages.success(request, f"Acknowledged: {_critical_values(acknowledged)}.")
    else:
        messages.info(request, "No critical result was waiting: another doctor may have acknowledged it meanwhile.")
    return redirect("patients:detail", pk=patient.pk)


@login_required
def observation_amend(request: HttpRequest, pk: int, observation_pk: int) -> HttpResponse:
    patient = selectors.patient_get_for_change(user=request.user, pk=pk)
    observation = selectors.observation_get_for_change(user=request.user, patient=patient, pk=observation_pk)
    spec = catalog().by_code[observation.analyte.code]
    form = ObservationAmendForm(request.POST or None, spec=spec)
    if form.is_valid():
        try:
            correction = services.observation_amend(observation=observation, by=request.user, **form.amendment())
        except ValidationError as error:
            attach_errors(form, error)
        else:
            shown = result_row(patient, observation, None).value
            done = f"corrected to {result_row(patient, correction, None).value}" if correction else "withdrawn"
            messages.success(request, f"{spec.name} {shown} {done}. The risk and advice are being computed again.")
            return redirect(f"{reverse('patients:detail', args=[patient.pk])}#results")
    taken = date_format(timezone.localtime(observation.effective_at), "Y-m-d H:i")
    title = f"Correct {spec.name} {result_row(patient, observation, None).value} taken {taken}"
    if observation.status != ObservationStatus.FINAL:  # corrected or withdrawn meanwhile, by someone else perhaps
        by = observation.amended_by
        messages.warning(
            request,
            f"This result was already {observation.get_status_display().lower()} by "
            f"{(by.get_full_name() or by.username) if by else 'someone'} on "
            f"{date_format(timezone.localtime(observation.amended_at), 'Y-m-d H:i')} ({observation.amend_reason}): "
            "nothing more to do here.",
        )
    return _form_page(request, form, title, patient)


@login_required
def panel_entry(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_get_for_change(user=request.user, pk=pk)
    panel = request.GET.get("panel", "cbc")
    specs = [spec for spec in catalog().specs() if spec.panel == panel]
    if not specs:
        raise Http404("No such panel.")
    form = PanelForm(request.POST or None, specs=specs)
    recorded = _submit(
        form,
        lambda data: services.observations_record(
            patient=patient, by=request.user, entries=form.entries(), effective_at=data["effective_at"]
        ),
    )
    if recorded is not None:
        messages.success(request, f"{len(recorded)} new result(s) recorded.")
        if critical := [o for o in recorded if o.interpretation in CRITICAL]:
            messages.warning(
                request,
                f"In a critical range: {_critical_values(critical)}. Critical values need prompt clinical action.",
            )
        return redirect("patients:detail", pk=patient.pk)
    selectors.patient_form_read(user=request.user, patient=patient, form="panel")
    context = {"form": form, "patient": patient, "panel": panel, "panels": selectors.PANELS}
    return render(request, "patients/panel.html", context)


@login_required
def condition_add(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_get_for_change(user=request.user, pk=pk)
    form = ConditionForm(request.POST or None)
    try:
        condition = _submit(form, lambda data: services.condition_record(patient=patient, by=request.user, **data))
    except PermissionDenied as denied:  # staff may record a diagnosis, only a doctor may confirm it
        form.add_error("verification_status", str(denied))
        condition = None
    if condition is not None:
        messages.success(request, f"{condition.code} {condition.display} was recorded.")
        return redirect("patients:detail", pk=patient.pk)
    return _form_page(request, form, f"Add a condition for {patient.full_name}", patient)


@login_required
def medication_add(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_get_for_change(user=request.user, pk=pk)
    form = MedicationForm(request.POST or None)
    if _submit(form, lambda data: services.medication_add(patient=patient, by=request.user, **data)):
        messages.success(request, "The medication was recorded.")
        return redirect("patients:detail", pk=patient.pk)
    return _form_page(request, form, f"Add a medication for {patient.full_name}", patient)


@login_required
def allergy_add(request: HttpRequest, pk: int) -> HttpResponse:
    patient = selectors.patient_get_for_change(user=request.user, pk=pk)
    form = AllergyForm(request.POST or None)
    if _submit(form, lambda data: services.allergy_add(patient=patient, by=request.user, **data)):
        messages.success(request, "The allergy was recorded.")
        return redirect("patients:detail", pk=patient.pk)
    return _form_page(request, form, f"Add an allergy for {patient.full_name}", patient)
