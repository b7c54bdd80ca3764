"""`evaluate_ranking`, `seed_demo_reviews` and `rebuild_ranker`."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from patients.models import Observation
from patients.selectors import critical_patient_counts
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, RankerSnapshot, RecommendationItem, StandingProtocol
from recommendations.tests.factories import prediction_for


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_evaluate_ranking_in_simulation_shows_the_ranker_beating_item_rates():
    out = run("evaluate_ranking", "--simulate", "--patients", "1500", "--boot", "200")

    assert "(a) rule order" in out
    assert "(b) item approval rate" in out
    assert "(c) feedback-adjusted ranker" in out
    paired = next(line for line in out.splitlines() if line.startswith("| (c) - (b)"))
    low = float(re.search(r"\| ([+-][\d.]+) \(([+-][\d.]+) to", paired).group(2))  # AUC difference, lower end
    assert low > 0


def test_evaluate_ranking_needs_decisions(clinic_a):
    with pytest.raises(CommandError, match="Not enough decisions"):
        run("evaluate_ranking", "--clinic", clinic_a.slug)
    with pytest.raises(CommandError, match="--clinic"):
        run("evaluate_ranking")


@pytest.fixture
def pending_advice(clinic_a, doctor_a):
    patients = [PatientFactory(clinic=clinic_a, sex="male") for _ in range(12)]
    predictions = [prediction_for(p, hba1c=6.0, ldl=4.3, bmi=31.0, age=40 + 3 * i) for i, p in enumerate(patients)]
    return recommendations_generate(predictions=predictions, clinic_id=clinic_a.pk)


def test_seed_demo_reviews_decides_through_the_services_once(clinic_a, pending_advice):
    out = run("seed_demo_reviews", "--clinic", clinic_a.slug, "--patients", "10")

    decisions = FeedbackEvent.objects.filter(clinic=clinic_a)
    assert decisions.count() > 20
    assert decisions.values("patient").distinct().count() == 10
    assert "ranker v1" in out
    assert RankerSnapshot.objects.filter(clinic=clinic_a).count() == 1
    assert "nothing added" in run("seed_demo_reviews", "--clinic", clinic_a.slug)


def test_seed_demo_reviews_then_enters_critical_results_left_to_acknowledge_and_review(
    clinic_a, staff_a, doctor_a, pending_advice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        out = run("seed_demo_reviews", "--clinic", clinic_a.slug, "--patients", "4")

    critical = Observation.objects.filter(patient__clinic=clinic_a, interpretation__in=["LL", "HH"])
    assert sorted(critical.values_list("analyte__code", "interpretation")) == [
        ("glucose", "LL"), ("hemoglobin", "LL"), ("potassium", "HH")
    ]  # fmt: skip
    assert {o.acknowledged_at for o in critical} == {None}
    assert set(critical.values_list("source", flat=True)) == {"manual"}  # entered as staff enter them
    assert critical.values("patient").distinct().count() == 3
    assert "Entered 3 critical results" in out
    assert critical_patient_counts(user=doctor_a) == {"patients": 3, "unacknowledged": 3}
    urgent = RecommendationItem.objects.filter(
        recommendation__patient=critical.get(analyte__code="potassium").patient,
        advice__code="potassium_critical_urgent", status="pending",
    )  # fmt: skip
    assert urgent.exists()  # advice from the rules alone: this clinic has no model yet


def test_seed_demo_reviews_has_the_demo_doctor_sign_a_protocol_that_takes_routine_advice_off_the_queue(
    clinic_a, doctor_a, pending_advice
):
    patients = [PatientFactory(clinic=clinic_a, sex="female") for _ in range(3)]
    predictions = [prediction_for(p, systolic_bp=132.0, bmi=27.0, age=50) for p in patients]
    routine = recommendations_generate(predictions=predictions, clinic_id=clinic_a.pk)

    out = run("seed_demo_reviews", "--clinic", clinic_a.slug, "--patients", "4")

    protocol = StandingProtocol.objects.get(clinic=clinic_a)
    assert (protocol.signed_by, protocol.min_age, protocol.max_age) == (doctor_a, 18, 64)
    assert "the review queue went from 11 patients (0 high or critical) to 8 (0)" in out  # 15, less 4 reviewed
    assert {rec.items.filter(status="pending").count() for rec in routine} == {0}
    assert "signed" not in run("seed_demo_reviews", "--clinic", clinic_a.slug)
    assert StandingProtocol.objects.filter(clinic=clinic_a).count() == 1


@pytest.mark.django_db
def test_rebuild_ranker_names_an_unknown_clinic():
    with pytest.raises(CommandError, match="No clinic"):
        run("rebuild_ranker", "--clinic", "nowhere")
