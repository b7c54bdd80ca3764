"""The review dashboard: how the clinic's doctors decide on generated advice, in aggregates.

Every chart is one aggregate query over the clinic's decisions (the three per-item charts share theirs): the
rows that reach Python are counts per advice item, clinician, override reason, week, tenth of an hour or
severity, never a patient. Clinicians are named: their decisions are staff data, not patient data.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import plotly.graph_objects as go
from django.core.exceptions import PermissionDenied
from django.db.models import Case, CharField, Count, FloatField, Func, Q, QuerySet, Value, When
from django.db.models.functions import Floor, TruncWeek
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.charts import Chart, axes
from clinic.models import User
from recommendations.models import (
    LEGACY_OVERRIDE_REASONS,
    FeedbackEvent,
    FeedbackOutcome,
    ItemStatus,
    OverrideReason,
    RecommendationItem,
    Severity,
)

ACCEPTED, OVERRIDDEN = FeedbackOutcome.ACCEPTED, FeedbackOutcome.OVERRIDDEN
BLUE, GREEN, RED, ORANGE, GREY = "#0d6efd", "#198754", "#dc3545", "#fd7e14", "#6c757d"
TOP_ITEMS = 20  # the acceptance chart shows the items decided most often; the CSV has them all
MOST_REJECTED = 10
REVIEW_TIME_BANDS = [
    (0, 1, "< 1 h"), (1, 4, "1–4 h"), (4, 8, "4–8 h"), (8, 24, "8–24 h"), (24, 48, "1–2 d"), (48, 72, "2–3 d"),
    (72, 168, "3–7 d"), (168, math.inf, "> 7 d"),
]  # fmt: skip
BACKLOG_AGES = [  # (age, legend, colour, CSV column)
    ("day", "< 1 day", "#9ec5fe", "waiting_under_1_day"),
    ("week", "1–7 days", ORANGE, "waiting_1_to_7_days"),
    ("older", "> 7 days", RED, "waiting_over_7_days"),
]
LEGEND = {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right", "traceorder": "normal"}


class HoursBetween(Func):
    """Hours from `start` to `end` (two datetime columns) as a number, on PostgreSQL and SQLite."""

    arity = 2
    output_field = FloatField()

    def __init__(self, end: str, start: str) -> None:
        super().__init__(end, start)

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="(EXTRACT(EPOCH FROM (%(expressions)s)) / 3600.0)",
                           arg_joiner=" - ", **extra_context)  # fmt: skip

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores naive UTC text on SQLite, which julianday() reads.
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s)) * 24.0)",
                           arg_joiner=") - julianday(", **extra_context)  # fmt: skip


@dataclass
class Rate:
    """Decisions on one advice item or by one clinician."""

    label: str
    code: str = ""
    approved: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def decisions(self) -> int:
        return self.approved + self.rejected

    @property
    def rate(self) -> float:
        return self.approved / self.decisions if self.decisions else 0.0

    @property
    def share_rejected(self) -> float:
        return self.rejected / self.decisions if self.decisions else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.approved, self.decisions)

    @property
    def top_reason(self) -> str:
        """The most common override reason (ties: the first in the catalog's order)."""
        if not self.reasons:
            return ""
        most = max(self.reasons.values())
        return next(label for code, label in OverrideReason.choices if self.reasons[code] == most)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); sound for small n and rates near 0 or 1."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def weighted_median(counts: list[tuple[float, int]]) -> float | None:
    """The median of values given as (value, how many), sorted by value."""
    total = sum(n for _, n in counts)
    if not total:
        return None
    middle = [(total - 1) // 2, total // 2]  # zero-based positions; the same one when `total` is odd
    found, seen = [], 0
    for value, n in counts:
        found += [value for position in middle if seen <= position < seen + n]
        seen += n
    return sum(found) / 2


def duration_text(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} minutes"
    if hours < 48:
        return f"{hours:.1f} hours"
    return f"{hours / 24:.1f} days"


# --- queries: one per chart, all of them aggregates -------------------------------------------------------------


def _decisions_of(user: User) -> QuerySet[FeedbackEvent]:
    """The review decisions of the clinic's doctors (feedback on CDS Hooks cards in an EHR is not a review)."""
    scope = Q() if user.is_superuser else Q(clinic_id=user.clinic_id)
    return FeedbackEvent.objects.filter(scope, outcome__in=[ACCEPTED, OVERRIDDEN], source="portal").order_by()


def _count(outcome: str) -> Count:
    return Count("pk", filter=Q(outcome=outcome))


def decisions_by_item(decisions: QuerySet[FeedbackEvent]) -> list[Rate]:
    """Approvals, rejections and their reasons per advice item, most decided first."""
    rows = decisions.values("advice__code", "advice__title", "outcome", "override_reason").annotate(n=Count("pk"))
    items: dict[str, Rate] = {}
    for row in rows:
        item = items.setdefault(row["advice__code"], Rate(label=row["advice__title"], code=row["advice__code"]))
        if row["outcome"] == ACCEPTED:
            item.approved += row["n"]
        else:
            item.rejected += row["n"]
            item.reasons[row["override_reason"]] += row["n"]
    return sorted(items.values(), key=lambda item: (-item.decisions, item.label))


def decisions_by_clinician(decisions: QuerySet[FeedbackEvent]) -> list[Rate]:
    rows = list(
        decisions.values("clinician__username", "clinician__first_name", "clinician__last_name").annotate(
            approved=_count(ACCEPTED), rejected=_count(OVERRIDDEN)
        )
    )
    names = Counter(f"{row['clinician__first_name']} {row['clinician__last_name']}".strip() for row in rows)
    rates = []
    for row in rows:
        name = f"{row['clinician__first_name']} {row['clinician__last_name']}".strip()
        if not name or names[name] > 1:  # one bar per clinician, even for two of the same name
            name = f"{name} ({row['clinician__username']})".strip() if name else row["clinician__username"]
        rates.append(Rate(label=name, approved=row["approved"], rejected=row["rejected"]))
    return sorted(rates, key=lambda rate: (-rate.decisions, rate.label))


def decisions_by_week(decisions: QuerySet[FeedbackEvent]) -> list[tuple[datetime.date, int, int]]:
    """(Monday, approvals, rejections) for every week from the first decision to the last, gaps included."""
    rows = (
        decisions.annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(approved=_count(ACCEPTED), rejected=_count(OVERRIDDEN))
        .order_by("week")
    )
    counted = {row["week"].date(): (row["approved"], row["rejected"]) for row in rows}
    if not counted:
        return []
    first, last = min(counted), max(counted)
    weeks = [first + datetime.timedelta(weeks=w) for w in range((last - first).days // 7 + 1)]
    return [(week, *counted.get(week, (0, 0))) for week in weeks]


def review_hours(decisions: QuerySet[FeedbackEvent]) -> list[tuple[float, int]]:
    """(hours from the advice being generated to the decision, to the tenth below; decisions), sorted."""
    hours = HoursBetween("created_at", "item__recommendation__created_at")
    rows = decisions.annotate(tenths=Floor(hours * 10)).values("tenths").annotate(n=Count("pk")).order_by("tenths")
    return [(max(0.0, float(row["tenths"]) / 10), row["n"]) for row in rows]


def pending_backlog(user: User) -> dict[tuple[int, str], int]:
    """Items waiting for a doctor, by (severity, how long they have waited)."""
    now = timezone.now()
    age = Case(
        When(recommendation__created_at__gte=now - datetime.timedelta(days=1), then=Value("day")),
        When(recommendation__created_at__gte=now - datetime.timedelta(days=7), then=Value("week")),
        default=Value("older"),
        output_field=CharField(),
    )
    scope = Q() if user.is_superuser else Q(recommendation__clinic_id=user.clinic_id)
    rows = (
        RecommendationItem.objects.filter(scope, status=ItemStatus.PENDING)
        .annotate(age=age)
        .values("severity", "age")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(row["severity"], row["age"]): row["n"] for row in rows}


# --- charts ------------------------------------------------------------------------------------------------------


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _headroom(figure: go.Figure, values: list[int]) -> None:
    """Room on the right of horizontal bars for the labels outside them."""
    figure.update_xaxes(range=[0, max(values, default=0) * 1.3 + 1])


def _percent(value: float) -> float:
    return round(100 * value, 1)


def _rate_chart(
    key: str, title: str, rates: list[Rate], *, y: str, overall: float | None, caption: str, shown: int | None = None
) -> Chart:
    """Horizontal acceptance bars with Wilson 95 % intervals, the lowest acceptance on top; the CSV has every row
    (with the advice code where there is one)."""
    bars = sorted(rates[:shown], key=lambda rate: (rate.rate, -rate.decisions))
    figure = go.Figure(
        go.Bar(
            x=[_percent(rate.rate) for rate in bars],
            y=[f"{_short(rate.label)} (n={rate.decisions})" for rate in bars],
            orientation="h",
            marker_color=BLUE,
            error_x={
                "type": "data",
                "symmetric": False,
                "color": "#212529",
                "thickness": 1.5,
                "width": 4,
                "array": [_percent(rate.interval[1] - rate.rate) for rate in bars],
                "arrayminus": [_percent(rate.rate - rate.interval[0]) for rate in bars],
            },
            customdata=[
                [rate.label, rate.approved, rate.decisions, _percent(rate.interval[0]), _percent(rate.interval[1])]
                for rate in bars
            ],
            hovertemplate="%{customdata[0]}<br>%{x:.0f}% accepted (%{customdata[1]} of %{customdata[2]})"
            "<br>95% interval %{customdata[3]:.0f}–%{customdata[4]:.0f}%<extra></extra>",
        )
    )
    if overall is not None:
        figure.add_vline(x=_percent(overall), line_dash="dot", line_color=GREY,
                         annotation_text=f"clinic {overall:.0%}", annotation_position="top")  # fmt: skip
    axes(figure, "Accepted (%)", y)
    figure.update_xaxes(range=[0, 105], ticksuffix="%")
    figure.update_yaxes(autorange="reversed", automargin=True)
    coded = any(rate.code for rate in rates)
    columns = [y.lower(), *(["code"] if coded else []), "decisions", "approved", "rejected", "acceptance_rate",
               "wilson_low", "wilson_high"]  # fmt: skip
    rows = [
        [rate.label, *([rate.code] if coded else []), rate.decisions, rate.approved, rate.rejected,
         round(rate.rate, 4), round(rate.interval[0], 4), round(rate.interval[1], 4)]
        for rate in rates
    ]  # fmt: skip
    return Chart(key, title, figure, columns, rows, caption, height=max(240, 110 + 28 * len(bars)))


def _reasons_chart(items: list[Rate]) -> Chart:
    reasons: Counter[str] = Counter()
    for item in items:
        reasons.update(item.reasons)
    total = sum(reasons.values())
    rows = sorted(
        (
            [code, label, reasons[code], round(reasons[code] / total, 4) if total else 0.0]
            for code, label in OverrideReason.choices
            if code not in LEGACY_OVERRIDE_REASONS or reasons[code]  # a legacy reason only where it was recorded
        ),
        key=lambda row: -row[2],
    )
    figure = go.Figure(
        go.Bar(
            x=[row[2] for row in rows],
            y=[row[1] for row in rows],
            orientation="h",
            marker_color=RED,
            text=[f"{row[2]} ({row[3]:.0%})" for row in rows],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x} rejections<extra></extra>",
        )
    )
    axes(figure, "Rejections", "Override reason")
    figure.update_yaxes(autorange="reversed", automargin=True)
    _headroom(figure, [row[2] for row in rows])
    top = f" Most often: {rows[0][1].lower()} ({rows[0][3]:.0%})." if total else ""
    caption = f"Why doctors rejected advice: the coded reason of each of the {total} rejections.{top}"
    columns = ["reason_code", "reason", "rejections", "share"]
    return Chart("override-reasons", "Override reasons", figure, columns, rows, caption, height=280)


def _most_rejected_chart(items: list[Rate]) -> tuple[Chart, list[Rate]]:
    rejected = [item for item in items if item.rejected]
    worst = sorted(rejected, key=lambda item: (-item.rejected, -item.share_rejected, item.label))[:MOST_REJECTED]
    figure = go.Figure(
        go.Bar(
            x=[item.rejected for item in worst],
            y=[_short(item.label) for item in worst],
            orientation="h",
            marker_color=RED,
            text=[f"{item.share_rejected:.0%} of {item.decisions}" for item in worst],
            textposition="outside",
            cliponaxis=False,
            customdata=[[item.label, item.top_reason] for item in worst],
            hovertemplate="%{customdata[0]}<br>%{x} rejections (%{text})<br>Mostly: %{customdata[1]}<extra></extra>",
        )
    )
    axes(figure, "Rejections", "Advice item")
    figure.update_yaxes(autorange="reversed", automargin=True)
    _headroom(figure, [item.rejected for item in worst])
    rows = [
        [item.code, item.label, item.rejected, item.decisions, round(item.share_rejected, 4), item.top_reason]
        for item in worst
    ]
    caption = (f"The {len(worst)} items rejected most often; the label is the share of that item's decisions "
               "that were rejections.") if worst else "No advice has been rejected."  # fmt: skip
    columns = ["code", "item", "rejections", "decisions", "share_rejected", "most_common_reason"]
    chart = Chart("most-rejected", "Advice rejected most often", figure, columns, rows, caption,
                  height=max(240, 110 + 28 * len(worst)))  # fmt: skip
    return chart, worst


def _review_time_chart(hours: list[tuple[float, int]]) -> tuple[Chart, float | None]:
    counts = [sum(n for value, n in hours if low <= value < high) for low, high, _ in REVIEW_TIME_BANDS]
    total, median = sum(counts), weighted_median(hours)
    figure = go.Figure(
        go.Bar(
            x=[label for *_, label in REVIEW_TIME_BANDS],
            y=counts,
            marker_color=BLUE,
            text=counts,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y} decisions<extra></extra>",
        )
    )
    axes(figure, "Time from advice generated to decision", "Decisions")
    figure.update_yaxes(rangemode="tozero")
    if median is None:
        caption = "No decisions yet."
    else:
        within_day = sum(n for (_, high, _), n in zip(REVIEW_TIME_BANDS, counts, strict=True) if high <= 24) / total
        caption = (
            f"Median {duration_text(median)} from advice generated to the doctor's decision "
            f"({total} decisions); {within_day:.0%} decided within a day."
        )
    rows = [
        [label, low, "" if math.isinf(high) else high, n]
        for (low, high, label), n in zip(REVIEW_TIME_BANDS, counts, strict=True)
    ]
    columns = ["band", "from_hours", "to_hours", "decisions"]
    chart = Chart("review-time", "Time to review", figure, columns, rows, caption, height=320)
    return chart, median


def _over_time_chart(weeks: list[tuple[datetime.date, int, int]]) -> Chart:
    labels = [week.isoformat() for week, *_ in weeks]
    figure = go.Figure(
        [
            go.Bar(name="Approved", x=labels, y=[a for _, a, _ in weeks], marker_color=GREEN),
            go.Bar(name="Rejected", x=labels, y=[r for *_, r in weeks], marker_color=RED),
        ]
    )
    figure.update_layout(barmode="stack", legend=LEGEND)
    axes(figure, "Week starting (Monday)", "Decisions")
    figure.update_xaxes(type="category")
    caption = (
        f"Approvals and rejections per week, {len(weeks)} week{'s' if len(weeks) != 1 else ''} from {labels[0]}."
        if weeks
        else "No decisions yet."
    )
    rows = [[week.isoformat(), approved, rejected] for week, approved, rejected in weeks]
    columns = ["week_starting", "approved", "rejected"]
    return Chart("decisions-over-time", "Decisions over time", figure, columns, rows, caption, height=320)


def _backlog_chart(backlog: dict[tuple[int, str], int]) -> tuple[Chart, int]:
    severities = sorted(Severity.choices, reverse=True)
    figure = go.Figure(
        [
            go.Bar(
                name=label,
                x=[name for _, name in severities],
                y=[backlog.get((value, age), 0) for value, _ in severities],
                marker_color=colour,
            )
            for age, label, colour, _ in BACKLOG_AGES
        ]
    )
    figure.update_layout(barmode="stack", legend={**LEGEND, "title": {"text": "Waiting"}})
    axes(figure, "Severity", "Items waiting for review")
    figure.update_yaxes(rangemode="tozero")
    rows = [[name, *(backlog.get((value, age), 0) for age, *_ in BACKLOG_AGES)] for value, name in severities]
    for row in rows:
        row.append(sum(row[1:]))
    pending = sum(row[-1] for row in rows)
    urgent = sum(row[-1] for row in rows[:2])
    caption = (
        f"{pending} item{'s' if pending != 1 else ''} waiting, {urgent} of them high or critical."
        if pending
        else "Nothing is waiting for review."
    )
    columns = ["severity", *(column for *_, column in BACKLOG_AGES), "total"]
    return Chart("pending-backlog", "Pending backlog", figure, columns, rows, caption, height=320), pending


# --- the page ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewDashboard:
    decisions: int
    acceptance: float | None
    median_hours: float | None
    pending: int
    by_item: Chart
    by_clinician: Chart
    reasons: Chart
    most_rejected: Chart
    most_rejected_rows: list[Rate]
    review_time: Chart
    over_time: Chart
    backlog: Chart

    @property
    def charts(self) -> list[Chart]:
        return [self.by_item, self.by_clinician, self.reasons, self.most_rejected, self.review_time, self.over_time,
                self.backlog]  # fmt: skip

    @property
    def median_text(self) -> str:
        return duration_text(self.median_hours) if self.median_hours is not None else ""


def _overall(rates: Iterable[Rate]) -> tuple[int, float | None]:
    approved = decisions = 0
    for rate in rates:
        approved, decisions = approved + rate.approved, decisions + rate.decisions
    return decisions, (approved / decisions if decisions else None)


def review_dashboard_for(*, user: User) -> ReviewDashboard:
    """The clinic's review statistics (all clinics for a superuser); doctors and admins only."""
    if not roles.can_view_dashboards(user):
        raise PermissionDenied("The review dashboard is for doctors and admins.")
    decisions = _decisions_of(user)
    items = decisions_by_item(decisions)
    total, overall = _overall(items)
    most_rejected, worst = _most_rejected_chart(items)
    review_time, median = _review_time_chart(review_hours(decisions))
    backlog, pending = _backlog_chart(pending_backlog(user))
    by_item = _rate_chart(
        "acceptance-by-item",
        "Acceptance per advice item",
        items,
        y="Advice item",
        overall=overall,
        shown=TOP_ITEMS,
        caption=f"Share of decisions that approved each item, with its 95 % Wilson interval and the number of "
        f"decisions (n); the {min(TOP_ITEMS, len(items))} items decided most often, lowest acceptance on top. "
        "The CSV has every item.",
    )
    by_clinician = _rate_chart(
        "acceptance-by-clinician",
        "Acceptance per clinician",
        decisions_by_clinician(decisions),
        y="Clinician",
        overall=overall,
        caption="Share of each doctor's decisions that approved the advice, with its 95 % Wilson "
        "interval; the dotted line is the clinic's overall rate.",
    )
    return ReviewDashboard(
        decisions=total, acceptance=overall, median_hours=median, pending=pending, by_item=by_item,
        by_clinician=by_clinician, reasons=_reasons_chart(items), most_rejected=most_rejected,
        most_rejected_rows=worst, review_time=review_time, over_time=_over_time_chart(decisions_by_week(decisions)),
        backlog=backlog,
    )  # fmt: skip


def review_dashboard_read(*, user: User, download: str = "") -> ReviewDashboard:
    """The dashboard, audited once per page view or CSV download."""
    dashboard = review_dashboard_for(user=user)
    audit_record(actor=user, action="dashboard.review.view", detail={"download": download} if download else None)
    return dashboard
