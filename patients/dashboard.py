"""Visual analytics: the population dashboard of a clinic and the radar of one patient's latest results.

Reads are set-based (one query per data set, the same number for 20 or 20,000 patients) and scoped to the
user's clinic. Every figure is drawn from aggregates computed here: quartiles instead of values, correlations
instead of pairs, counts per month, anonymous points in a shuffled order. No name, MRN or id of a patient is
put into a chart or its CSV.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone
from kombu.exceptions import OperationalError
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clinic.audit import audit_record
from clinic.charts import (
    CLASS_COLORS,
    PALETTE,
    RISK_COLORS,
    TRACES,
    Chart,
    Figure,
    SvgChart,
    axes,
    colorscale,
    no_data,
)  # fmt: skip
from clinic.models import User
from mltraining.ml.features import FEATURES, NUMERIC
from mltraining.ml.labels import CLASS_DISPLAY, HEALTHY, LABELS, class_of_code
from patients.catalog import catalog
from patients.catalog_data import unit_display
from patients.charts import Spoke, radar_svg
from patients.models import AnalyteKind, Condition, Observation, Patient, VerificationStatus
from patients.selectors import ABNORMAL, reference_range_for
from predictions import selectors as prediction_selectors

logger = logging.getLogger(__name__)

# The labs compared across the population, in panel order, with the short names clinicians use on an axis.
KEY_LABS: dict[str, str] = {
    "hemoglobin": "Hemoglobin", "mcv": "MCV", "wbc": "White cells", "platelets": "Platelets",
    "glucose": "Glucose", "hba1c": "HbA1c", "creatinine": "Creatinine", "total_cholesterol": "Total cholesterol",
    "ldl": "LDL", "hdl": "HDL", "triglycerides": "Triglycerides", "alt": "ALT", "crp": "CRP",
}  # fmt: skip
# The radar needs an upper reference limit: HDL (lower limit only) is left out, two vitals join.
RADAR_LABS: dict[str, str] = {
    **{code: label for code, label in KEY_LABS.items() if code != "hdl"},
    "systolic_bp": "Systolic BP",
    "bmi": "BMI",
}
NO_CONFIRMED = "No confirmed target diagnosis"
MIN_GROUP = 5  # smaller groups are not drawn: their quartiles would come close to single patients' values
MAX_POINTS = 2000
RADAR_RANGE = (-0.5, 2.0)  # normalised values beyond are drawn at the edge (the CSV has the real ones)


def _unit(code: str) -> str:
    return unit_display(catalog().by_code[code].unit)


def _class_name(key: str) -> str:
    return CLASS_DISPLAY.get(key, key)


# --- scope and reads -----------------------------------------------------------------------------------------


def dashboard_clinic_id(user: User) -> int | None:
    """The clinic whose aggregates the user sees: their own; None (every clinic) for a superuser only."""
    if user.is_superuser:
        return None
    if user.clinic_id is None:
        raise PermissionDenied("The account belongs to no clinic.")
    return user.clinic_id


def _patients(clinic_id: int | None) -> QuerySet[Patient]:
    return Patient.objects.all() if clinic_id is None else Patient.objects.filter(clinic_id=clinic_id)


def _observations(clinic_id: int | None) -> QuerySet[Observation]:
    return Observation.objects.all() if clinic_id is None else Observation.objects.filter(patient__clinic_id=clinic_id)


def _month(moment) -> pd.Period:
    return pd.Period(pd.Timestamp(moment).tz_localize(None), freq="M")


def registrations_by_month(*, clinic_id: int | None) -> pd.Series:
    """Patients registered per month (a PeriodIndex): one grouped query."""
    rows = (
        _patients(clinic_id)
        .annotate(month=TruncMonth("created_at"))
        .order_by("month")
        .values("month")
        .annotate(n=Count("id"))
        .values_list("month", "n")
    )
    return pd.Series({_month(month): n for month, n in rows}, dtype="int64")


def results_by_month(*, clinic_id: int | None) -> pd.DataFrame:
    """Results per month (PeriodIndex) and kind of measurement (lab, vital, wearable): one grouped query."""
    rows = (
        _observations(clinic_id)
        .annotate(month=TruncMonth("effective_at"))
        .order_by("month")
        .values("month", "analyte__kind")
        .annotate(n=Count("id"))
        .values_list("month", "analyte__kind", "n")
    )
    frame = pd.DataFrame([(_month(m), kind, n) for m, kind, n in rows], columns=["month", "kind", "n"])
    return frame.pivot_table(index="month", columns="kind", values="n", aggfunc="sum", fill_value=0)


def latest_values_frame(*, clinic_id: int | None, codes: Sequence[str]) -> pd.DataFrame:
    """The latest value of each analyte in `codes` per patient, wide: one row per patient id, one column per
    code, NaN where never measured. One set-based query."""
    ids = catalog().ids
    newer = Observation.objects.filter(
        patient_id=OuterRef("patient_id"), analyte_id=OuterRef("analyte_id"), effective_at__gt=OuterRef("effective_at")
    )
    rows = (
        _observations(clinic_id)
        .filter(analyte_id__in=[ids[code] for code in codes])
        .exclude(Exists(newer))
        .order_by("patient_id", "analyte_id", "id")  # two results at the same latest time: the last entered wins
        .values_list("patient_id", "analyte_id", "value")
    )
    long = pd.DataFrame(list(rows), columns=["patient_id", "analyte", "value"])
    long["code"] = long["analyte"].map({pk: code for code, pk in ids.items()})
    wide = long.pivot_table(index="patient_id", columns="code", values="value", aggfunc="last")
    return wide.reindex(columns=list(codes))


def confirmed_classes(*, clinic_id: int | None) -> pd.DataFrame:
    """(patient_id, class key) for every confirmed diagnosis that maps to a target class: one query."""
    conditions = Condition.objects.filter(verification_status=VerificationStatus.CONFIRMED)
    if clinic_id is not None:
        conditions = conditions.filter(patient__clinic_id=clinic_id)
    rows = {(pid, class_of_code(code)) for pid, code in conditions.order_by().values_list("patient_id", "code")}
    return pd.DataFrame(sorted(r for r in rows if r[1]), columns=["patient_id", "class_key"])


# --- charts of the population ------------------------------------------------------------------------------


def _month_labels(index: pd.PeriodIndex) -> list[str]:
    return [period.strftime("%Y-%m") for period in index]


def _every_month(frame: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Rows for every month from the first to now, at least the last twelve: gaps and quiet months show as zero."""
    now = pd.Period(pd.Timestamp.now(tz="UTC").tz_localize(None), freq="M")
    months = pd.period_range(min(frame.index.min(), now - 11), max(frame.index.max(), now), freq="M")
    return frame.reindex(months, fill_value=0)


def registrations_chart(counts: pd.Series) -> Chart:
    figure = Figure()
    rows: list[tuple[Any, ...]] = []
    if counts.empty:
        no_data(figure, "No patients registered yet")
    else:
        counts = _every_month(counts)
        months, total = _month_labels(counts.index), counts.cumsum()
        figure.add_bar(x=months, y=counts.tolist(), name="Registered that month", marker={"color": PALETTE[0]},
                       hovertemplate="%{x|%b %Y}: %{y:,} registered<extra></extra>")  # fmt: skip
        figure.add_scatter(x=months, y=total.tolist(), name="Registered in total", yaxis="y2", mode="lines+markers",
                           line={"color": PALETTE[3]},
                           hovertemplate="%{x|%b %Y}: %{y:,} in total<extra></extra>")  # fmt: skip
        rows = list(zip(months, counts.tolist(), total.tolist(), strict=True))
    axes(figure, "Month of registration", "Patients registered that month")
    figure.update_layout(legend={"orientation": "h", "y": -0.25}, xaxis={"tickformat": "%b %Y"})
    if rows:  # after axes(), which names every y axis
        figure.update_layout(yaxis2={"title": {"text": "Patients in total"}, "overlaying": "y", "side": "right",
                                     "rangemode": "tozero", "showgrid": False, "tickmode": "auto"})  # fmt: skip
    return Chart(
        key="registrations",
        title="Patients registered per month",
        figure=figure,
        columns=["month", "patients_registered", "patients_in_total"],
        rows=rows,
        caption="Bars: new patient records each month; line: all patients of the clinic so far (right axis).",
    )


def results_chart(counts: pd.DataFrame) -> Chart:
    figure = Figure()
    rows: list[tuple[Any, ...]] = []
    if counts.empty:
        no_data(figure, "No results recorded yet")
    else:
        counts = _every_month(counts)
        months = _month_labels(counts.index)
        for (kind, label), color in zip(AnalyteKind.choices, [PALETTE[0], PALETTE[2], PALETTE[5]], strict=True):
            values = counts[kind].tolist() if kind in counts else [0] * len(months)
            figure.add_bar(x=months, y=values, name=label, marker={"color": color},
                           hovertemplate=f"%{{x|%b %Y}}: %{{y:,}} {label.lower()} results<extra></extra>")  # fmt: skip
            rows += [(month, label, n) for month, n in zip(months, values, strict=True) if n]
    figure.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.25}, xaxis={"tickformat": "%b %Y"})
    return Chart(
        key="results",
        title="Results recorded per month",
        figure=axes(figure, "Month the sample or measurement was taken", "Results"),
        columns=["month", "kind", "results"],
        rows=sorted(rows),
        caption="Every stored value counts once: lab results, vital signs and fitness-tracker daily values.",
    )


def correlation_chart(latest: pd.DataFrame) -> Chart:
    codes = [code for code in KEY_LABS if code in latest and latest[code].notna().sum() >= 2 * MIN_GROUP]
    present = latest[codes].notna().to_numpy(dtype=int)
    pairs = pd.DataFrame(present.T @ present, index=codes, columns=codes)  # patients with both values
    corr = latest[codes].corr(method="pearson", min_periods=2 * MIN_GROUP)
    labels = [KEY_LABS[code] for code in codes]
    figure = Figure()
    if len(codes) < 2:
        no_data(figure, "Not enough patients with results yet")
    else:
        # The lower triangle only (the matrix is symmetric; its diagonal is 1), numbers where not negligible.
        z = np.where(np.tril(np.ones(corr.shape, dtype=bool), k=-1), corr.round(2).to_numpy(), np.nan)[1:, :-1]
        text = [["" if np.isnan(r) or abs(r) < 0.2 else f"{r:.2f}" for r in row] for row in z]
        figure.add_heatmap(
            z=np.where(np.isnan(z), None, z).tolist(), x=labels[:-1], y=labels[1:], zmin=-1, zmax=1, zmid=0,
            text=text, texttemplate="%{text}", textfont={"size": 10}, colorscale=colorscale("RdBu_r"),
            hoverongaps=False, customdata=pairs.to_numpy()[1:, :-1].tolist(),
            colorbar={"title": {"text": "r"}, "thickness": 12, "len": 0.8},
            hovertemplate="%{y} and %{x}: r = %{z:.2f} (%{customdata:,} patients)<extra></extra>",
        )  # fmt: skip
        figure.update_layout(yaxis={"autorange": "reversed", "showgrid": False}, plot_bgcolor="white",
                             xaxis={"tickangle": -45, "showgrid": False})  # fmt: skip
    r, n = corr.to_numpy(), pairs.to_numpy()
    rows = [
        (KEY_LABS[a], KEY_LABS[codes[j]], round(float(r[i, j]), 3), int(n[i, j]))
        for i, a in enumerate(codes)
        for j in range(i + 1, len(codes))
        if pd.notna(r[i, j])
    ]
    return Chart(
        key="correlations",
        title="How the main labs move together",
        figure=axes(figure, "Lab", "Lab"),
        columns=["lab", "other_lab", "pearson_r", "patients"],
        rows=rows,
        caption="Pearson correlation of each patient's latest values: +1 (red) both rise together, −1 (blue) one "
        "rises as the other falls, 0 no linear relation; numbers shown from ±0.20. A correlation is not a cause.",
        height=560,
    )


def _box(values: np.ndarray) -> dict[str, float]:
    """Tukey box: quartiles, and whiskers at the furthest values within 1.5 × IQR of the box."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    return {
        "q1": q1, "median": median, "q3": q3,
        "lowerfence": values[values >= q1 - reach].min(), "upperfence": values[values <= q3 + reach].max(),
    }  # fmt: skip


def _groups(latest: pd.DataFrame, classes: pd.DataFrame) -> list[tuple[str, str, pd.Index]]:
    """(key, label, patient ids) of the reference group and of each class with a confirmed diagnosis."""
    diagnosed = pd.Index(classes["patient_id"].unique())
    groups = [(HEALTHY, NO_CONFIRMED, latest.index.difference(diagnosed))]
    for key, display, _ in LABELS:
        groups.append((key, display, pd.Index(classes.loc[classes["class_key"] == key, "patient_id"])))
    return groups


def _reference_band(code: str) -> list[dict[str, Any]]:
    """The adult reference range as a shaded band, when one range holds for every adult (not split by sex)."""
    ranges = {(r.low, r.high) for r in catalog().by_code[code].ranges}
    if len(ranges) != 1:
        return []
    low, high = ranges.pop()
    if high is None:
        return []
    return [{"type": "rect", "xref": "x", "yref": "paper", "x0": low or 0, "x1": high, "y0": 0, "y1": 1,
             "fillcolor": "rgba(25, 135, 84, 0.12)", "line": {"width": 0}, "layer": "below"}]  # fmt: skip


def labs_by_condition_chart(latest: pd.DataFrame, classes: pd.DataFrame) -> Chart:
    figure, traces, rows, shown = Figure(), [], [], []
    groups = []  # each group's rows of `latest`, found once: a patient with no latest value is in no row
    for key, display, patients in _groups(latest, classes):
        rows_of = latest.index.get_indexer(patients)
        groups.append((key, display, rows_of[rows_of >= 0]))
    for code, label in KEY_LABS.items():
        if code not in latest:
            continue
        first, column = len(traces), latest[code].to_numpy(dtype=float)
        for key, display, group_rows in groups:
            values = column[group_rows]
            values = values[~np.isnan(values)]
            if len(values) < MIN_GROUP:
                continue
            stats = {name: round(float(v), 3) for name, v in _box(values).items()}
            # No visibility per trace: the picker's buttons name their lab's traces, and static/js/charts.js shows
            # the first lab's and builds each button's list in the browser. Drawn one decimal finer than the lab
            # is reported (the CSV keeps three).
            drawn = {name: [round(v, catalog().by_code[code].decimals + 1)] for name, v in stats.items()}
            traces.append({
                "lowerfence": drawn["lowerfence"], "marker": {"color": CLASS_COLORS[key]}, "median": drawn["median"],
                "name": display, "orientation": "h", "q1": drawn["q1"], "q3": drawn["q3"],
                "upperfence": drawn["upperfence"], "y": [f"{display} ({len(values):,})"], "type": "box",
            })  # fmt: skip
            rows.append((label, _unit(code), display, len(values), *stats.values()))
        if len(traces) > first:
            shown.append((code, f"{label} ({_unit(code)})", first, len(traces)))
    menu = [
        {"label": title, "method": "update",
         "args": [{"visible": {TRACES: [start, stop]}}, {"xaxis.title.text": title, "shapes": _reference_band(code)}]}
        for code, title, start, stop in shown
    ]  # fmt: skip
    if menu:
        figure.update_layout(updatemenus=[{"buttons": menu, "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom",
                                           "direction": "down"}], shapes=menu[0]["args"][1]["shapes"])  # fmt: skip
    else:
        no_data(figure, f"No group of {MIN_GROUP} or more patients with results yet")
    figure.update_layout(yaxis={"autorange": "reversed"}, xaxis={"type": "linear"}, showlegend=False)
    figure.data = traces
    return Chart(
        key="labs_by_condition",
        title="Lab values by confirmed diagnosis",
        figure=axes(figure, menu[0]["args"][1]["xaxis.title.text"] if menu else "Value", "Diagnosis (patients)"),
        columns=["lab", "unit", "group", "patients", "q1", "median", "q3", "lower_whisker", "upper_whisker"],
        rows=rows,
        caption="Pick a lab at the top right; latest value per patient. Box: the middle half of the patients, line "
        "at the median; whiskers reach the furthest value within 1.5 box widths. Green: the adult reference range "
        f"where it is the same for women and men. Groups under {MIN_GROUP} patients are not shown; a patient with "
        "several diagnoses is in each group.",
        height=560,
    )


def _pattern_sample(predictions: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_POINTS of the latest predictions, drawn at random (a fixed seed, so the page and its CSV agree),
    with the model's inputs: only these are read, and the pattern map is fitted and drawn on them."""
    order = np.random.default_rng(0).permutation(len(predictions))[:MAX_POINTS]
    sample = predictions.iloc[order].reset_index(drop=True)
    inputs = prediction_selectors.prediction_inputs(prediction_ids=sample["id"].tolist())
    return sample.assign(inputs=[inputs[pk] for pk in sample["id"]])


def _feature_label(name: str) -> str:
    return next((f.label for f in FEATURES if f.name == name), name)


@dataclass(frozen=True)
class _Projection:
    points: np.ndarray
    shares: list[float]  # of the variance, per axis
    drivers: list[list[str]]  # the inputs weighing most on each axis


def _projection(inputs: pd.Series) -> _Projection | None:
    """2-D PCA of the standardised numeric model inputs (median-imputed), with what each axis is made of."""
    X = pd.DataFrame(list(inputs), columns=NUMERIC).apply(pd.to_numeric, errors="coerce")
    X = X.loc[:, X.notna().sum() >= 2]
    X = X.loc[:, X.std() > 0]
    if len(X) < 3 or X.shape[1] < 2:
        return None
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), PCA(n_components=2, random_state=0))
    points = model.fit_transform(X)
    pca = model[-1]
    drivers = [[_feature_label(X.columns[i]) for i in np.argsort(-np.abs(c))[:3]] for c in pca.components_]
    return _Projection(points, [float(v) for v in pca.explained_variance_ratio_], drivers)


def pca_chart(predictions: pd.DataFrame) -> Chart:
    figure, rows = Figure(), []
    projection = _projection(predictions["inputs"]) if "inputs" in predictions else None
    titles, drivers = ["Pattern axis 1", "Pattern axis 2"], ""
    if projection is None:
        no_data(figure, "Not enough predictions yet")
    else:
        titles = [f"Pattern axis {i + 1} ({share:.0%} of the differences)" for i, share in enumerate(projection.shares)]
        drivers = " Axis 1 mostly reflects {}; axis 2 {}.".format(*(", ".join(d) for d in projection.drivers))
        # A random order (fixed seed, so the page and its CSV agree): a point's place says nothing of who it is.
        order = np.random.default_rng(0).permutation(len(projection.points))[:MAX_POINTS]
        sample = pd.DataFrame(np.round(projection.points[order], 2), columns=["x", "y"])
        sample["class_key"] = predictions["predicted_class"].to_numpy()[order]
        for key in [HEALTHY, *(k for k, _, _ in LABELS)]:
            group = sample[sample["class_key"] == key]
            if group.empty:
                continue
            figure.add_scatter(x=group["x"].tolist(), y=group["y"].tolist(), mode="markers", name=_class_name(key),
                               marker={"color": CLASS_COLORS[key], "size": 6, "opacity": 0.7},
                               hovertemplate=f"{_class_name(key)}<extra></extra>")  # fmt: skip
            rows += [(x, y, _class_name(key)) for x, y in zip(group["x"], group["y"], strict=True)]
    figure.update_layout(legend={"orientation": "h", "y": -0.2, "title": {"text": "Predicted: "}})
    return Chart(
        key="patterns",
        title="Patients by lab pattern, coloured by predicted class",
        figure=axes(figure, titles[0], titles[1]),
        columns=["pattern_axis_1", "pattern_axis_2", "predicted_class"],
        rows=rows,
        caption=f"Each dot is one anonymous patient's latest prediction (at most {MAX_POINTS:,}, drawn at random). "
        "Dots close together had similar standardised model inputs (principal component analysis of the patients "
        f"drawn); an axis combines many inputs.{drivers}",
        height=560,
    )


def confidence_chart(predictions: pd.DataFrame) -> Chart:
    edges = np.linspace(0, 1, 21)
    figure, rows = Figure(), []
    for key in [HEALTHY, *(k for k, _, _ in LABELS)]:
        confidence = predictions.loc[predictions["predicted_class"] == key, "confidence"].dropna()
        if confidence.empty:
            continue
        counts, _ = np.histogram(confidence.clip(0, 1), bins=edges)
        figure.add_bar(x=((edges[:-1] + edges[1:]) / 2).tolist(), y=counts.tolist(), width=0.05,
                       name=_class_name(key), marker={"color": CLASS_COLORS[key]},
                       hovertemplate=f"{_class_name(key)}: %{{y:,}} patients<extra></extra>")  # fmt: skip
        rows += [(_class_name(key), round(float(lo), 2), round(float(hi), 2), int(n))
                 for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True) if n]  # fmt: skip
    if not rows:
        no_data(figure, "No predictions yet")
    figure.update_layout(barmode="stack", xaxis={"range": [0, 1], "tickformat": ".0%", "dtick": 0.1},
                         legend={"orientation": "h", "y": -0.2, "traceorder": "normal"})  # fmt: skip
    return Chart(
        key="confidence",
        title="How sure the model is of its prediction",
        figure=axes(figure, "Model confidence: probability of the predicted class", "Patients"),
        columns=["predicted_class", "confidence_from", "confidence_to", "patients"],
        rows=rows,
        caption="Latest prediction per patient, in bins of 5 %. Low confidence means the pattern sits between "
        "classes: read the probabilities on the patient's page before acting on it.",
        height=560,
    )


def risk_mix_chart(counts: Sequence[tuple[Any, str, int]]) -> Chart:
    frame = pd.DataFrame([(_month(m), level, n) for m, level, n in counts], columns=["month", "level", "n"])
    figure, rows = Figure(), []
    if frame.empty:
        no_data(figure, "No predictions yet")
    else:
        table = frame.pivot_table(index="month", columns="level", values="n", aggfunc="sum", fill_value=0)
        table = _every_month(table.reindex(columns=list(RISK_COLORS), fill_value=0))
        shares = (table.div(table.sum(axis=1), axis=0) * 100).fillna(0)
        months = _month_labels(table.index)
        for level, color in RISK_COLORS.items():
            hover = f"%{{x|%b %Y}}: %{{y:.1f}} % {level} (%{{customdata:,}})<extra></extra>"
            figure.add_bar(x=months, y=shares[level].round(1).tolist(), customdata=table[level].tolist(),
                           name=f"{level.capitalize()} risk", marker={"color": color}, hovertemplate=hover)  # fmt: skip
            rows += [(month, level, int(n), round(float(s), 1))
                     for month, n, s in zip(months, table[level], shares[level], strict=True) if n]  # fmt: skip
    figure.update_layout(barmode="stack", yaxis={"range": [0, 100], "ticksuffix": " %"},
                         xaxis={"tickformat": "%b %Y"}, legend={"traceorder": "reversed"})  # fmt: skip
    return Chart(
        key="risk_mix",
        title="Risk levels of the predictions made each month",
        figure=axes(figure, "Month of prediction", "Share of predictions"),
        columns=["month", "risk_level", "predictions", "share_percent"],
        rows=rows,
        caption="Every successful prediction counts in the month it was made (a patient scored twice counts twice). "
        "Risk level: the model's probability of any target condition, cut at the model's thresholds.",
    )


@dataclass(frozen=True)
class PopulationDashboard:
    charts: list[Chart]
    summary: dict[str, int]
    computed_at: datetime.datetime

    @property
    def by_key(self) -> dict[str, Chart]:
        return {chart.key: chart for chart in self.charts}


def population_dashboard_read(*, user: User, download: str = "") -> PopulationDashboard | None:
    """The dashboard of the user's clinic, and its audit row (one per page view or CSV download).

    The figures are a pass over every patient's results and predictions (seconds for a clinic of 100,000): they
    are computed once for all the server's processes and again every DASHBOARD_MAX_AGE; the page says when.
    None while a worker computes them for the first time.
    """
    clinic_id = dashboard_clinic_id(user)
    board = _shared("population", clinic_id)
    detail: dict[str, Any] = {"scope": "all clinics" if clinic_id is None else clinic_id}
    detail.update(board.summary if board is not None else {"computing": True})
    if download:
        detail["download"] = download[:40]
    audit_record(actor=user, action="dashboard.population.view", detail=detail)
    return board


@dataclass(frozen=True)
class Waiting:
    asked_at: datetime.datetime  # when the figures were first asked for
    seconds: float  # waited since

    @property
    def late(self) -> bool:
        """Not brought within WORKER_WAIT: the workers are busy (a long batch goes first) or none is running."""
        return self.seconds > WORKER_WAIT

    @property
    def minutes(self) -> int:
        return int(self.seconds // 60)


def population_dashboard_waiting(*, user: User) -> Waiting | None:
    """How long the dashboard of the user's clinic, not computed yet, has been waited for; None once it is there."""
    since = cache.get(f"{_key('population', dashboard_clinic_id(user), ())}:waiting_since")
    if since is None:
        return None
    return Waiting(datetime.datetime.fromtimestamp(since, tz=datetime.UTC), time.time() - since)


def _population_dashboard(clinic_id: int | None) -> PopulationDashboard:
    computed_at = timezone.now()
    registrations = registrations_by_month(clinic_id=clinic_id)
    results = results_by_month(clinic_id=clinic_id)
    latest = latest_values_frame(clinic_id=clinic_id, codes=list(KEY_LABS))
    classes = confirmed_classes(clinic_id=clinic_id)
    predictions = prediction_selectors.latest_predictions_frame(clinic_id=clinic_id)
    sample = _pattern_sample(predictions)
    risk_mix = prediction_selectors.risk_level_counts_by_month(clinic_id=clinic_id)
    summary = {
        "patients": int(registrations.sum()),
        "results": int(results.to_numpy().sum()),
        "diagnosed": int(classes["patient_id"].nunique()),
        "predicted": len(predictions),
        "high_risk": int((predictions["risk_level"] == "high").sum()),
    }
    charts = [
        dataclasses.replace(chart, figure=chart.figure.to_dict())
        for chart in (
            registrations_chart(registrations),
            results_chart(results),
            correlation_chart(latest),
            labs_by_condition_chart(latest, classes),
            pca_chart(sample),
            confidence_chart(predictions),
            risk_mix_chart(risk_mix),
        )
    ]  # kept and shared (pickled into the cache) as plain dictionaries
    return PopulationDashboard(charts=charts, summary=summary, computed_at=computed_at)


# --- figures kept for all processes ---------------------------------------------------------------------------

# Clinic-wide figures move slowly and cost a pass over the clinic's results (seconds for 100,000 patients). Each is
# computed once for all the server's processes and kept in the shared cache (Redis in production; without it, each
# process's memory); a process also keeps its own copy, so reading a fresh figure costs no round trip. Once older
# than its maximum age, a figure is still shown while a worker computes it again (one refresh at a time), for up to
# STALE_KEPT: the first visitor of the morning, or after a weekend, does not wait seconds for it. A figure never
# computed (or not for a week) is sent to a worker too, and the page says it is being computed (and, past
# WORKER_WAIT, that no worker has brought it yet): a request does not hold a server process for seconds, nor, for
# a clinic a few times larger, past the server's timeout. Only where no worker can be reached is a figure computed
# during the request (in-process tasks, as in the demo, or a broker down).
MAX_AGE = {"population": 600, "medians": 300}  # seconds
DASHBOARD_MAX_AGE = MAX_AGE["population"]
STALE_KEPT = 7 * 24 * 3600  # seconds
REFRESH_LOCK = 300  # seconds: a refresh whose worker died is sent again after this
WORKER_WAIT = 60  # seconds: a figure asked for and not brought by then is late (workers busy, or none running)
# key -> (fresh until, value), as in the shared cache, the most recently used last. At most LOCAL_KEPT: a worker
# refreshing every clinic's figures each night would otherwise keep them all (bench/clinic_network.py).
LOCAL_KEPT = 64
_local: OrderedDict[str, tuple[float, Any]] = OrderedDict()
_asked: set[str] = set()  # every figure this process has asked for, computed or not yet


def _key(kind: str, clinic_id: int | None, codes: Sequence[str]) -> str:
    return f"dashboard:{kind}:{clinic_id}:{','.join(codes)}"


def _shared(kind: str, clinic_id: int | None, codes: Sequence[str] = ()) -> Any | None:
    """The figure, or None while a worker computes it for the first time."""
    key = _key(kind, clinic_id, codes)
    local = _local.get(key)
    if local is not None and time.time() < local[0]:
        _local.move_to_end(key)
        return local[1]
    _asked.add(key)
    entry = cache.get(key)
    if (entry is None or time.time() >= entry[0]) and cache.add(f"{key}:refreshing", True, REFRESH_LOCK):
        from patients.tasks import dashboard_figure_refresh  # the task module imports this one

        try:
            dashboard_figure_refresh.delay(kind, clinic_id, list(codes))  # a worker's job; in-process, done by now
        except OperationalError:  # the broker is down: computed here, as before there were workers
            logger.warning("Could not send the refresh of %s to a worker; computing it in the request", key)
            figure_refresh(kind, clinic_id, codes)
        entry = cache.get(key) or entry
    if entry is None:
        cache.add(f"{key}:waiting_since", time.time(), STALE_KEPT)  # the first ask: the page says how long ago
        return None
    _local_keep(key, entry)
    return entry[1]


def figure_refresh(kind: str, clinic_id: int | None, codes: Sequence[str]) -> tuple[float, Any]:
    """Compute one figure and share it; returns its (fresh until, value)."""
    value = _population_dashboard(clinic_id) if kind == "population" else _medians(clinic_id, codes)
    key = _key(kind, clinic_id, codes)
    entry = (time.time() + MAX_AGE[kind], value)
    cache.set(key, entry, MAX_AGE[kind] + STALE_KEPT)
    cache.delete_many([f"{key}:refreshing", f"{key}:waiting_since"])
    _local_keep(key, entry)
    return entry


def _local_keep(key: str, entry: tuple[float, Any]) -> None:
    _local.pop(key, None)
    _local[key] = entry
    while len(_local) > LOCAL_KEPT:
        _local.popitem(last=False)


def dashboard_caches_forget() -> None:
    """Compute every figure this process has asked for again at its next read, here and in every process sharing
    the cache (other processes' own copies still last until they are due); a refresh under way is forgotten too."""
    cache.delete_many([*_asked, *(f"{key}:{state}" for key in _asked for state in ("refreshing", "waiting_since"))])
    _local.clear()
    _asked.clear()


# --- the radar of one patient --------------------------------------------------------------------------------


def clinic_medians(*, clinic_id: int, codes: Sequence[str]) -> dict[str, float] | None:
    """The median over the clinic's patients of each one's latest value, per code: kept for all the server's
    processes, computed again every MAX_AGE["medians"] seconds (one query). None while a worker computes them for
    the first time."""
    return _shared("medians", clinic_id, codes)


def _medians(clinic_id: int, codes: Sequence[str]) -> dict[str, float]:
    medians = latest_values_frame(clinic_id=clinic_id, codes=codes).median()
    return {code: float(value) for code, value in medians.items() if pd.notna(value)}


@dataclass(frozen=True)
class _Spoke:
    label: str
    unit: str
    observation: Observation
    low: float
    high: float
    median: float | None
    decimals: int

    def position(self, value: float | None) -> float | None:
        return None if value is None else (value - self.low) / (self.high - self.low)

    def value_text(self, value: float | None) -> str:
        return "—" if value is None else f"{value:.{self.decimals}f} {self.unit}"

    def text(self, value: float) -> str:
        return f"{self.label}: {self.value_text(value)} (range {self.low:g}–{self.high:g})"


def _spokes(patient: Patient, latest: Sequence[Observation], medians: dict[str, float]) -> list[_Spoke]:
    by_code = {o.analyte.code: o for o in latest}
    spokes = []
    for code, label in RADAR_LABS.items():
        rng = reference_range_for(patient=patient, analyte_code=code)
        if code not in by_code or rng is None or rng.high is None:
            continue
        low = rng.low if rng.low is not None else 0.0  # an upper limit only: the scale starts at zero
        spokes.append(_Spoke(label, _unit(code), by_code[code], low, rng.high, medians.get(code),
                             catalog().by_code[code].decimals))  # fmt: skip
    return spokes


def _description(spokes: Sequence[_Spoke]) -> str:
    """The radar in words, for those who do not see it: which results lie outside their range, and which way."""
    below = [s.label for s in spokes if s.observation.value < s.low]
    above = [s.label for s in spokes if s.observation.value > s.high]
    said = [f"{', '.join(names)} {where} the reference range" for names, where in ((below, "below"), (above, "above"))
            if names]  # fmt: skip
    outside = "; ".join(said) if said else "every one within its reference range"
    return f"{len(spokes)} latest results on this patient's own reference ranges: {outside}. The table lists them."


def patient_radar_chart(
    *, patient: Patient, latest: Sequence[Observation], medians: dict[str, float] | None
) -> SvgChart | None:
    """The patient's latest key values on their reference ranges (0 = low limit, 1 = high limit) against the
    clinic's medians on the same scale (None: being computed); None with fewer than three such values.

    Drawn on the server (patients.charts.radar_svg): the patient page, the most visited, loads no plotly."""
    spokes = _spokes(patient, latest, medians or {})
    if len(spokes) < 3:
        return None
    title = "Latest results against the reference range"
    svg = radar_svg(
        title=title, description=_description(spokes), radial_range=RADAR_RANGE, with_medians=medians is not None,
        spokes=[
            Spoke(label=s.label, position=s.position(s.observation.value), text=s.text(s.observation.value),
                  flagged=s.observation.interpretation in ABNORMAL, median_position=s.position(s.median),
                  median_text="" if s.median is None else s.text(s.median))
            for s in spokes
        ],
    )  # fmt: skip
    rows = [
        (s.label, round(s.observation.value, s.decimals + 1), s.unit, s.low, s.high,
         round(s.position(s.observation.value), 3), s.observation.interpretation,
         f"{s.observation.effective_at:%Y-%m-%d}", None if s.median is None else round(s.median, s.decimals + 1),
         None if s.median is None else round(s.position(s.median), 3))
        for s in spokes
    ]  # fmt: skip
    return SvgChart(
        key="radar",
        title=title,
        svg=svg,
        columns=["lab", "value", "unit", "range_low", "range_high", "position", "flag", "taken", "clinic_median",
                 "clinic_median_position"],
        rows=rows,
        table=[
            (s.label, s.value_text(s.observation.value), f"{s.low:g}–{s.high:g} {s.unit}",
             s.observation.interpretation or "—", f"{s.observation.effective_at:%Y-%m-%d}", s.value_text(s.median))
            for s in spokes
        ],
        caption="Each spoke is one lab on this patient's own reference range: the shaded ring is in range (inner "
        "edge the low limit, outer edge the high limit; with only an upper limit the centre side is zero). Red "
        "dots are flagged results. Dashed: the clinic's median of each patient's latest value (recomputed every few "
        "minutes). Values beyond the "
        "chart are drawn at its edge; the CSV has them all."
        + (" The clinic medians are being computed: they are drawn on a later view." if medians is None else ""),
    )  # fmt: skip
