"""The model dashboard of a clinic's admins: how a model version was chosen, how it does on held-out patients,
what it relies on, whether its inputs drift, and how the clinic's versions compare.

Every figure is drawn from what training and the drift check stored (metrics, candidates, importances, drift
reports): nothing is recomputed and no patient row is read. Reads are scoped to the admin's clinic (a superuser
may look at any), and the number of queries does not grow with the number of versions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from clinic import roles
from clinic.audit import audit_record
from clinic.charts import CLASS_COLORS, PALETTE, RISK_COLORS, Chart, axes, no_data
from clinic.models import Clinic, User
from mltraining import selectors
from mltraining.ml.features import FEATURES
from mltraining.ml.labels import CLASS_DISPLAY
from mltraining.models import DriftBand, DriftReport, ModelStatus, ModelVersion

# The same colour per diagnosis as on the population dashboard.
BAND_COLORS = {
    DriftBand.STABLE: RISK_COLORS["low"],
    DriftBand.MODERATE: RISK_COLORS["moderate"],
    DriftBand.MAJOR: RISK_COLORS["high"],
    DriftBand.NO_DATA: "#adb5bd",
}
CANDIDATE_LABELS = {
    "dummy": "Dummy (baseline)",
    "logistic_regression": "Logistic regression",
    "decision_tree": "Decision tree",
    "random_forest": "Random forest",
    "hist_gradient_boosting": "Gradient boosting",
    "svc": "Support vector machine",
    "mlp": "Neural network (MLP)",
    "lightgbm": "LightGBM",
}
# Held-out metrics drawn across versions (all "higher is better", on 0..1); the CSV carries the others too.
TREND_METRICS = ("roc_auc_ovr_macro", "balanced_accuracy", "f1_macro", "accuracy")
HISTORY_METRICS = (*TREND_METRICS, "brier", "log_loss")
TOP_FEATURES = 15
TOP_DRIFT = 20
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
PSI_FLOOR = 0.001  # drawn on a log scale (PSI spans 0.001 to 10); a PSI of 0 is drawn at this floor
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "font": {"size": 11},
                "entrywidth": 0.5, "entrywidthmode": "fraction"}  # fmt: skip
# Charts whose PNG (same name) every run stored: shown instead when a version predates the stored curve points.
STORED_PLOTS = ("roc_curves", "calibration")
_DEFERRED = (
    "reference_profile", "feature_schema", "library_versions", "model_card", "training_run__log",
    "training_run__error", "training_run__audit", "training_run__data_summary", "training_run__metrics",
)  # fmt: skip


def _class_name(key: str) -> str:
    return CLASS_DISPLAY.get(key, key)


def _candidate_name(key: str) -> str:
    return CANDIDATE_LABELS.get(key, key)


def _feature_labels() -> dict[str, str]:
    return {feature.name: feature.label for feature in FEATURES}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value == value else None  # NaN: not available


# --- scope and reads -----------------------------------------------------------------------------------------


def dashboard_versions_for(*, user: User) -> QuerySet[ModelVersion]:
    """The versions the user may look at; PermissionDenied for anyone but clinic admins and superusers."""
    if not roles.can_manage_clinic(user):
        raise PermissionDenied("Only the clinic's admins see the model dashboard.")
    return selectors.model_version_list_for(user=user)


def dashboard_version_get(
    *, user: User, version_id: int | None = None, clinic_id: int | None = None
) -> ModelVersion | None:
    """The version to show: the one asked for (404 outside the user's scope), else the clinic's active one, else
    its latest; None when there is none. A clinic admin's clinic is their own; a superuser's, the one chosen
    (any clinic when none is)."""
    versions = dashboard_versions_for(user=user).select_related("clinic", "training_run").defer(*_DEFERRED)
    if version_id is not None:
        return get_object_or_404(versions, pk=version_id)
    if not user.is_superuser:
        clinic_id = user.clinic_id
    if clinic_id is not None:
        versions = versions.filter(clinic_id=clinic_id)
    active_first = Case(When(status=ModelStatus.ACTIVE, then=Value(0)), default=Value(1), output_field=IntegerField())
    return versions.order_by(active_first, "-created_at", "-id").first()


def version_history(*, clinic_id: int) -> list[dict[str, Any]]:
    """Every version of the clinic, oldest first, with its held-out metrics: one query, whatever their number
    (only the numbers are read from the metrics JSON, never the whole of it)."""
    metrics = {name: F(f"metrics__test__{name}") for name in HISTORY_METRICS}
    return list(
        ModelVersion.objects.filter(clinic_id=clinic_id)
        .order_by("version")
        .values("pk", "version", "status", "created_at")
        .annotate(chosen=F("training_run__chosen"), baseline=F("metrics__baseline__roc_auc_ovr_macro"), **metrics)
    )


def latest_drift_report(*, version: ModelVersion) -> DriftReport | None:
    return DriftReport.objects.filter(model_version=version).order_by("-created_at", "-id").first()


def dashboard_clinics(*, user: User) -> list[Clinic]:
    """The superuser's clinic chooser: clinics with at least one version. Nothing to choose for a clinic admin."""
    if not user.is_superuser:
        return []
    return list(Clinic.objects.filter(model_versions__isnull=False).distinct().order_by("name"))


# --- charts --------------------------------------------------------------------------------------------------


def candidates_chart(candidates: Sequence[dict[str, Any]], chosen: str, metric: str) -> Chart:
    label = selectors.METRIC_LABELS.get(metric, metric)
    figure, rows = go.Figure(), []
    scored = [c for c in candidates if not c.get("error") and _number((c.get("cv_mean") or {}).get(metric)) is not None]
    for candidate in scored:
        name = candidate["name"]
        mean, std = candidate["cv_mean"][metric], _number((candidate.get("cv_std") or {}).get(metric)) or 0.0
        folds = len((candidate.get("cv_scores") or {}).get(metric) or [])
        rows.append((_candidate_name(name), metric, round(mean, 4), round(std, 4), folds, name == chosen))
    if rows:
        colors = [PALETTE[0] if row[5] else ("#adb5bd" if row[0] == CANDIDATE_LABELS["dummy"] else "#9ec5fe")
                  for row in rows]  # fmt: skip
        names = [f"<b>{row[0]}</b> (chosen)" if row[5] else row[0] for row in rows]
        figure.add_bar(x=names, y=[row[2] for row in rows], marker_color=colors,
                       error_y={"type": "data", "array": [row[3] for row in rows], "color": "#495057"},
                       customdata=[row[3] for row in rows], text=[f"{row[2]:.3f}" for row in rows],
                       textposition="inside", insidetextanchor="start",
                       hovertemplate=f"%{{x}}: {label} %{{y:.3f}} ± %{{customdata:.3f}}<extra></extra>")  # fmt: skip
        figure.update_yaxes(rangemode="tozero")  # bars start at zero; the labels carry the differences
    else:
        no_data(figure, "No candidate was compared", hide_axes=True)
    failed = [c.get("name", "") for c in candidates if c.get("error")]
    caption = (
        f"Each candidate's mean {label} over the grouped cross-validation folds of the training patients; "
        "the whisker is one standard deviation between folds. Whiskers that overlap mean the candidates are "
        "practically tied. The chosen model is dark blue, the dummy (always the commonest diagnosis) grey."
    )
    if failed:
        caption += f" Failed and not drawn: {', '.join(_candidate_name(name) for name in failed)}."
    return Chart(
        key="candidates",
        title="Candidate models compared by cross-validation",
        figure=axes(figure, "Candidate model", f"{label}, mean over folds"),
        columns=["candidate", "metric", "cv_mean", "cv_std", "folds", "chosen"],
        rows=rows,
        caption=caption,
        height=420,
    )


def confusion_chart(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Chart:
    figure, rows = go.Figure(), []
    names = [_class_name(c) for c in classes]
    if matrix and len(matrix) == len(classes):
        totals = [sum(row) for row in matrix]
        shares = [[count / total if total else 0.0 for count in row] for row, total in zip(matrix, totals, strict=True)]
        figure.add_heatmap(
            z=shares, x=names, y=names, zmin=0, zmax=1, colorscale="Blues", text=matrix, texttemplate="%{text}",
            customdata=matrix, colorbar={"title": {"text": "Share of<br>the row"}, "tickformat": ".0%"},
            hovertemplate="Recorded %{y}, predicted %{x}: %{customdata} patients (%{z:.0%} of the row)<extra></extra>",
        )  # fmt: skip
        figure.update_yaxes(autorange="reversed")
        rows = [(names[i], names[j], int(matrix[i][j]), round(shares[i][j], 4))
                for i in range(len(classes)) for j in range(len(classes))]  # fmt: skip
    else:
        no_data(figure, "No confusion matrix stored for this version", hide_axes=True)
    return Chart(
        key="confusion_matrix",
        title="Recorded against predicted diagnosis (held-out patients)",
        figure=axes(figure, "Model's most likely diagnosis", "Recorded diagnosis"),
        columns=["recorded_diagnosis", "predicted_diagnosis", "patients", "share_of_recorded"],
        rows=rows,
        caption="Each cell: number of held-out patients; its shade, their share of all patients with that recorded "
        "diagnosis (the row). The diagonal is where the model agrees with the record; a dark cell off it is a "
        "diagnosis the model mistakes for another.",
        height=500,
    )


def roc_chart(curves: dict[str, dict[str, Any]], classes: Sequence[str]) -> Chart:
    figure, rows = go.Figure(), []
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="Chance (0.50)",
                       line={"dash": "dash", "color": "#adb5bd"}, hoverinfo="skip")  # fmt: skip
    for key in classes:
        curve = curves.get(key)
        if not curve:
            continue
        auc = _number(curve.get("auc"))
        name = f"{_class_name(key)} ({auc:.2f})" if auc is not None else _class_name(key)
        figure.add_scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=name,
                           line={"color": CLASS_COLORS.get(key), "shape": "hv"},
                           hovertemplate=f"{_class_name(key)}: sensitivity %{{y:.0%}} at %{{x:.0%}} false positives"
                           "<extra></extra>")  # fmt: skip
        rows += [(_class_name(key), x, y, round(auc, 4) if auc is not None else None)
                 for x, y in zip(curve["fpr"], curve["tpr"], strict=True)]  # fmt: skip
    figure.update_xaxes(range=[0, 1], tickformat=".0%")
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    figure.update_layout(legend={**LEGEND_BELOW, "title": {"text": "Diagnosis (area under the curve)", "side": "top"}})
    return Chart(
        key="roc_curves",
        title="ROC curve per diagnosis (held-out patients)",
        figure=axes(figure, "False positive rate (1 − specificity)", "Sensitivity (true positive rate)"),
        columns=["diagnosis", "false_positive_rate", "true_positive_rate", "auc"],
        rows=rows,
        caption="One curve per diagnosis: moving the probability cut-off down flags more of the patients who have it "
        "(up) at the price of more who do not (right). The closer a curve hugs the top left corner, the better; "
        "the dashed diagonal is guessing. AUC 1.0 is perfect, 0.5 chance.",
        height=500,
    )


def calibration_chart(bins: dict[str, dict[str, Any]], classes: Sequence[str]) -> Chart:
    figure, rows = go.Figure(), []
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfectly calibrated",
                       line={"dash": "dash", "color": "#adb5bd"}, hoverinfo="skip")  # fmt: skip
    for key in classes:
        curve = bins.get(key)
        if not curve:
            continue
        figure.add_scatter(x=curve["predicted"], y=curve["observed"], customdata=curve["n"], mode="lines+markers",
                           name=_class_name(key), line={"color": CLASS_COLORS.get(key)}, marker={"size": 6},
                           hovertemplate=f"{_class_name(key)}: given %{{x:.0%}} on average, %{{y:.0%}} had it "
                           "(%{customdata} patients)<extra></extra>")  # fmt: skip
        rows += [(_class_name(key), p, o, n) for p, o, n in zip(curve["predicted"], curve["observed"], curve["n"],
                                                                 strict=True)]  # fmt: skip
    figure.update_xaxes(range=[0, 1], tickformat=".0%")
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    figure.update_layout(legend=LEGEND_BELOW)
    missing = [_class_name(key) for key in classes if key not in bins]
    caption = (
        "Held-out patients grouped by the probability the model gave a diagnosis (about the same number per "
        "point). On the dashed line, a probability of 30 % means 3 in 10 such patients had it; below the line "
        "the model overstates the risk, above it understates it."
    )
    if missing:
        caption += f" Not drawn (too few patients with it in the test set): {', '.join(missing)}."
    return Chart(
        key="calibration",
        title="Calibration: predicted against observed (held-out patients)",
        figure=axes(figure, "Probability the model gave the diagnosis", "Share who had the diagnosis"),
        columns=["diagnosis", "mean_predicted_probability", "observed_share", "patients"],
        rows=rows,
        caption=caption,
        height=500,
    )


def _top(values: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(((name, value) for name, value in values.items() if _number(value) is not None),
                  key=lambda item: -item[1])[:TOP_FEATURES]  # fmt: skip


def _bars_height(n: int) -> int:
    return max(300, 110 + 24 * n)


def importance_chart(importances: dict[str, float], model: str) -> Chart:
    labels, figure = _feature_labels(), go.Figure()
    top = _top(importances)
    rows = [(labels.get(name, name), name, round(value, 4)) for name, value in top]
    if rows:
        figure.add_bar(x=[row[2] for row in rows], y=[row[0] for row in rows], orientation="h",
                       marker_color=PALETTE[0], hovertemplate="%{y}: %{x:.1%} of the total<extra></extra>")  # fmt: skip
        figure.update_yaxes(autorange="reversed")
        figure.update_xaxes(tickformat=".0%", rangemode="tozero")
    else:
        no_data(figure, f"The {_candidate_name(model)} model has no importance of its own", hide_axes=True)
    return Chart(
        key="feature_importance",
        title=f"What the model weighs most ({_candidate_name(model)} importance)",
        figure=axes(figure, "Share of the total importance", "Input"),
        columns=["input", "feature", "importance_share"],
        rows=rows,
        caption=f"The {TOP_FEATURES} inputs with the largest importance as the model itself measures it (trees: how "
        "much its splits on the input improve the fit; linear models: the size of its standardised weights), "
        "summed over each input's encoded columns. It says what the model uses, not what causes a diagnosis.",
        height=_bars_height(len(rows)),
    )


def permutation_chart(permutation: dict[str, Sequence[float]]) -> Chart:
    labels, figure = _feature_labels(), go.Figure()
    means = {name: figures[0] for name, figures in permutation.items() if figures}
    stds = {name: figures[1] if len(figures) > 1 else 0.0 for name, figures in permutation.items() if figures}
    top = _top(means)
    rows = [(labels.get(name, name), name, round(value, 4), _rounded(stds[name]) or 0.0) for name, value in top]
    if rows:
        figure.add_bar(x=[row[2] for row in rows], y=[row[0] for row in rows], orientation="h",
                       marker_color=PALETTE[4], customdata=[row[3] for row in rows],
                       error_x={"type": "data", "array": [row[3] for row in rows], "color": "#495057"},
                       hovertemplate="%{y}: macro ROC-AUC −%{x:.3f} ± %{customdata:.3f}<extra></extra>")  # fmt: skip
        figure.update_yaxes(autorange="reversed")
        figure.add_vline(x=0, line_color="#495057", line_width=1)
    else:
        no_data(figure, "No permutation importance stored for this version", hide_axes=True)
    return Chart(
        key="permutation_importance",
        title="What its accuracy depends on (permutation importance)",
        figure=axes(figure, "Drop in macro ROC-AUC", "Input"),
        columns=["input", "feature", "mean_drop_in_macro_roc_auc", "std"],
        rows=rows,
        caption=f"The {TOP_FEATURES} inputs whose values, shuffled between held-out patients, cost the most macro "
        "ROC-AUC (whisker: one standard deviation over the repeats). Near zero: the model does as well without it, "
        "often because another input carries the same information.",
        height=_bars_height(len(rows)),
    )


def drift_chart(report: DriftReport | None) -> Chart:
    figure, rows = go.Figure(), []
    title = "Input drift since training (population stability index)"
    if report is None:
        no_data(figure, "No drift check of this version yet", hide_axes=True)
    else:
        title += f": {report.get_overall_band_display().lower()}"
        features = selectors.drift_feature_rows(report=report)
        rows = [(r["label"], r["name"], _rounded(r["psi"]), r["band"], r["n"], _rounded(r["missing_share"]))
                for r in features]  # fmt: skip
        predictions = report.report.get("predictions") or {}
        if _number(predictions.get("psi")) is not None:
            rows.append(("Predicted diagnoses (class mix)", "predicted_class", _rounded(predictions["psi"]),
                         predictions.get("band", ""), report.n_recent, None))  # fmt: skip
            rows.sort(key=lambda row: -(row[2] if row[2] is not None else -1.0))
        drawn = [row for row in rows if row[2] is not None][:TOP_DRIFT]
        if drawn:
            _drift_bars(figure, drawn)
        else:
            no_data(figure, f"{report.get_overall_band_display()}: no feature could be compared", hide_axes=True)
    return Chart(
        key="drift",
        title=title,
        figure=axes(figure, "Population stability index (PSI) of recent patients against training, log scale", "Input"),
        columns=["input", "feature", "psi", "band", "recent_patients", "missing_share"],
        rows=rows,
        caption=f"The {TOP_DRIFT} inputs that shifted most between the training patients and those with a lab or vital "
        "in the check's window (the CSV has all). Under 0.1 (green) stable; 0.1 to 0.25 (orange) a moderate shift "
        "worth a look; above 0.25 (red) a major shift to investigate before trusting the model, such as a "
        "laboratory that changed its units.",
        height=_bars_height(len(rows[:TOP_DRIFT])) + 20,
    )


def _rounded(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else round(number, 4)


def _drift_bars(figure: go.Figure, rows: Sequence[tuple[Any, ...]]) -> None:
    values = [max(row[2], PSI_FLOOR) for row in rows]
    top = max(1.0, max(values) * 1.5)
    for x0, x1, band in ((PSI_FLOOR, PSI_MODERATE, DriftBand.STABLE), (PSI_MODERATE, PSI_MAJOR, DriftBand.MODERATE),
                         (PSI_MAJOR, top, DriftBand.MAJOR)):  # fmt: skip
        figure.add_vrect(x0=x0, x1=x1, fillcolor=BAND_COLORS[band], opacity=0.1, line_width=0, layer="below")
    for x, text, anchor in ((PSI_MODERATE, "moderate from 0.1", "right"), (PSI_MAJOR, "major from 0.25", "left")):
        figure.add_vline(x=x, line_dash="dash", line_color="#6c757d", line_width=1)
        # Annotations on a log axis take log10 coordinates (shapes take data values).
        figure.add_annotation(x=math.log10(x), y=1, yref="paper", yanchor="bottom", xanchor=anchor, text=text,
                              showarrow=False, font={"size": 10, "color": "#6c757d"})  # fmt: skip
    figure.add_bar(x=values, y=[row[0] for row in rows], orientation="h",
                   marker_color=[BAND_COLORS.get(row[3], "#adb5bd") for row in rows],
                   customdata=[[row[2], row[3]] for row in rows],
                   hovertemplate="%{y}: PSI %{customdata[0]:.3f} (%{customdata[1]})<extra></extra>")  # fmt: skip
    ticks = [t for t in (0.001, 0.01, 0.1, 0.25, 1, 10, 100) if t <= top]
    figure.update_xaxes(type="log", range=[math.log10(PSI_FLOOR), math.log10(top)], tickvals=ticks,
                        ticktext=[f"{t:g}" for t in ticks])  # fmt: skip
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(bargap=0.35)  # the bands show between the bars


def versions_chart(history: Sequence[dict[str, Any]], shown: ModelVersion) -> Chart:
    figure = go.Figure()
    versions = [row["version"] for row in history]
    for name, color in zip(TREND_METRICS, PALETTE, strict=False):
        label = selectors.METRIC_LABELS[name]
        figure.add_scatter(x=versions, y=[_number(row[name]) for row in history], mode="lines+markers", name=label,
                           line={"color": color}, connectgaps=True,
                           hovertemplate=f"v%{{x}}: {label} %{{y:.3f}}<extra></extra>")  # fmt: skip
    figure.add_scatter(x=versions, y=[_number(row["baseline"]) for row in history], mode="lines",
                       name="Dummy (macro ROC-AUC)", line={"dash": "dash", "color": "#adb5bd"},
                       hovertemplate="v%{x}: dummy macro ROC-AUC %{y:.3f}<extra></extra>")  # fmt: skip
    active = [row for row in history if row["status"] == ModelStatus.ACTIVE]
    if active:
        figure.add_scatter(x=[row["version"] for row in active],
                           y=[_number(row["roc_auc_ovr_macro"]) for row in active], mode="markers",
                           name="Active version", hoverinfo="skip",
                           marker={"symbol": "star", "size": 16, "color": "#ffc107",
                                   "line": {"color": "#495057", "width": 1}})  # fmt: skip
    figure.add_vline(x=shown.version, line_dash="dot", line_color="#6c757d", annotation_text="shown",
                     annotation_position="top", annotation_font={"size": 10, "color": "#6c757d"})  # fmt: skip
    figure.update_xaxes(tickmode="array", tickvals=versions, ticktext=[f"v{v}" for v in versions])
    figure.update_yaxes(range=[0, 1.02])
    figure.update_layout(legend=LEGEND_BELOW)
    rows = [
        (row["version"], row["status"], row["chosen"], row["created_at"].strftime("%Y-%m-%d %H:%M"),
         *(_rounded(row[name]) for name in HISTORY_METRICS), _rounded(row["baseline"]))
        for row in history
    ]  # fmt: skip
    return Chart(
        key="versions",
        title="Held-out performance by model version",
        figure=axes(figure, "Model version", "Score (higher is better)"),
        columns=["version", "status", "model", "trained", *HISTORY_METRICS, "dummy_roc_auc_ovr_macro"],
        rows=rows,
        caption="Each version is scored on its own held-out patients, so versions trained on different data compare "
        "only roughly. The star marks the active version, the dotted line the version shown on this page; the "
        "dashed grey line is the dummy that always answers the commonest diagnosis.",
        height=420,
    )


# --- the page ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelDashboard:
    version: ModelVersion | None
    history: list[dict[str, Any]] = field(default_factory=list)
    clinics: list[Clinic] = field(default_factory=list)
    drift: DriftReport | None = None
    charts: list[Chart] = field(default_factory=list)
    stored_plots: dict[str, str] = field(default_factory=dict)  # chart key -> plot name, where curves are missing
    model_name: str = ""
    metric_rows: list[dict[str, Any]] = field(default_factory=list)
    candidate_metrics: list[str] = field(default_factory=list)
    candidate_rows: list[dict[str, Any]] = field(default_factory=list)
    unusable: bool = False  # active, yet scoring nobody: synthetic training data outside a demo clinic

    @property
    def by_key(self) -> dict[str, Chart]:
        return {chart.key: chart for chart in self.charts}


def model_charts(version: ModelVersion, history: Sequence[dict[str, Any]], drift: DriftReport | None) -> list[Chart]:
    """The charts of one version; the ROC and calibration charts only when its training stored their points."""
    run, metrics = version.training_run, version.metrics or {}
    test = metrics.get("test") or {}
    curves = test.get("curves") or {}
    classes = list(version.classes)
    importances = run.importances or {}
    charts = [
        candidates_chart(
            run.candidates or [], run.chosen, (run.configuration or {}).get("selection_metric") or "roc_auc_ovr_macro"
        ),
        confusion_chart(test.get("confusion_matrix") or [], classes),
    ]
    if "roc" in curves:
        charts.append(roc_chart(curves["roc"], classes))
    if "calibration" in curves:
        charts.append(calibration_chart(curves["calibration"], classes))
    return [
        *charts,
        importance_chart(importances.get("model") or {}, run.chosen),
        permutation_chart(importances.get("permutation") or {}),
        drift_chart(drift),
        versions_chart(history, version),
    ]


def model_dashboard_read(
    *, user: User, version_id: int | None = None, clinic_id: int | None = None, download: str = ""
) -> ModelDashboard:
    """The dashboard of one version of the user's clinic, and its audit row (one per page view or CSV download)."""
    version = dashboard_version_get(user=user, version_id=version_id, clinic_id=clinic_id)
    clinics = dashboard_clinics(user=user)
    detail: dict[str, Any] = {"download": download[:40]} if download else {}
    if version is None:
        audit_record(actor=user, action="dashboard.model.view", detail={**detail, "version": None})
        return ModelDashboard(version=None, clinics=clinics)
    history = version_history(clinic_id=version.clinic_id)
    drift = latest_drift_report(version=version)
    charts = model_charts(version, history, drift)
    keys = {chart.key for chart in charts}
    run = version.training_run
    stored = {key: key for key in STORED_PLOTS if key not in keys and key in (run.plots or {})}
    metric_names, candidate_rows = selectors.candidate_rows(run.candidates or [], run.chosen)
    detail["version"] = version.version
    audit_record(actor=user, action="dashboard.model.view", target=version, detail=detail)
    return ModelDashboard(
        version=version,
        history=history,
        clinics=clinics,
        drift=drift,
        charts=charts,
        stored_plots=stored,
        model_name=_candidate_name(run.chosen),
        metric_rows=selectors.metric_rows(version.metrics or {}),
        candidate_metrics=metric_names,
        candidate_rows=candidate_rows,
        unusable=selectors.active_version_unusable(version=version),
    )
