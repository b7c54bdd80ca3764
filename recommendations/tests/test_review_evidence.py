"""The review page decides in one view: behind each item its values with dates, ranges, flags and sources, their
trend, the model's explanation for the item's condition, and provenance (issue 31, point 2)."""

import datetime
import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent
from patients.catalog import catalog
from patients.clinical import age_on, interpret
from patients.models import Analyte, Observation
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.tests.factories import prediction_for

DAY = datetime.timedelta(days=1)


def record(patient, code, value, days_ago, source="hl7", by=None):
    """A final result of the patient `days_ago` days back, flagged as the platform flags it."""
    at = timezone.now() - days_ago * DAY
    spec = catalog().by_code[code]
    return Observation.objects.create(
        patient=patient, analyte=Analyte.objects.get(code=code), value=value, entered_value=value,
        entered_unit=spec.unit, effective_at=at, source=source, entered_by=by,
        interpretation=interpret(spec, value, patient.sex, age_on(patient.birth_date, at.date())),
    )  # fmt: skip


def generate(patient, **inputs):
    [rec] = recommendations_generate(predictions=[prediction_for(patient, sex=patient.sex, **inputs)],
                                     clinic_id=patient.clinic_id)  # fmt: skip
    return rec


def item_html(html, advice):
    """The HTML of one item's card on the review page."""
    start = html.index(f'data-advice="{advice}"')
    end = html.find('data-testid="item"', start)
    return html[start : end if end != -1 else len(html)]


def evidence_rows(section):
    """Each value behind an item as (test, value, flag, range, date, source, last values) in words."""
    rows = re.findall(r'<tr data-testid="evidence-value">(.*?)</tr>', section, re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]
    return [[re.sub(r"<svg.*?</svg>", "", cell, flags=re.S) for cell in row] for row in cells]


def text(html):
    """What the reader sees: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def diabetic(clinic_a, doctor_a):
    patient = PatientFactory(clinic=clinic_a, sex="female", birth_date=datetime.date(1970, 5, 1))
    record(patient, "hba1c", 6.1, 300)
    record(patient, "hba1c", 6.6, 120, source="fhir")
    record(patient, "hba1c", 7.2, 3)
    record(patient, "ldl", 2.4, 3)  # read by no rule that fired: not behind the diabetes item
    return patient


def test_each_rule_item_shows_exactly_its_values_with_date_range_flag_source_and_trend(client, doctor_a, diabetic):
    rec = generate(diabetic, hba1c=7.2, ldl=2.4)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    section = item_html(html, "diabetes_range_confirm")
    [(name, value, flag, reference, taken, source, last)] = evidence_rows(section)
    assert (text(name), text(value), text(flag)) == ("Hemoglobin A1c", "7.2 %", "High")
    assert text(reference) == "4–5.6 %"
    assert text(taken) == f"{timezone.localtime(timezone.now() - 3 * DAY):%Y-%m-%d}"
    assert text(source) == "HL7 v2 lab feed"
    dates = [f"{timezone.localtime(timezone.now() - days * DAY):%Y-%m-%d}" for days in (300, 120, 3)]
    assert text(last) == f"{dates[0]}: 6.1 % (high) {dates[1]}: 6.6 % (high) {dates[2]}: 7.2 % (high)"
    assert section.count('class="trend-chart"') == 1


def test_a_value_entered_in_the_portal_names_who_entered_it(client, doctor_a, staff_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="male", birth_date=datetime.date(1960, 1, 1))
    record(patient, "potassium", 6.1, 1, source="manual", by=staff_a)
    rec = generate(patient, potassium=6.1)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    [row] = evidence_rows(item_html(html, "potassium_severe_same_day"))
    assert text(row[5]) == f"entered by {staff_a.get_full_name() or staff_a.username}"
    assert text(row[2]) == "High"


def test_a_value_taken_after_the_advice_is_named_beside_the_one_judged(client, doctor_a, diabetic):
    rec = generate(diabetic, hba1c=7.2, ldl=2.4)
    record(diabetic, "hba1c", 5.4, 0)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    [row] = evidence_rows(item_html(html, "diabetes_range_confirm"))
    assert text(row[1]) == "7.2 %"
    assert f"Newer result since this advice: 5.4 % (Normal) on {timezone.localdate():%Y-%m-%d}." in text(row[6])


@pytest.mark.hazard("H1", "Two findings on one condition reach the doctor as one item that names every value")
def test_two_findings_on_one_condition_show_as_one_item_naming_every_value(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="male", birth_date=datetime.date(1965, 1, 1))
    record(patient, "hba1c", 7.1, 2)
    record(patient, "glucose", 8.0, 2)
    rec = generate(patient, hba1c=7.1, glucose=8.0)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    assert html.count('data-advice="diabetes_range_confirm"') == 1
    assert 'data-advice="prediabetes_lifestyle"' not in html
    section = item_html(html, "diabetes_range_confirm")
    assert [(text(row[0]), text(row[1])) for row in evidence_rows(section)] == [
        ("Hemoglobin A1c", "7.1 %"), ("Glucose (fasting)", "8.0 mmol/L")
    ]  # fmt: skip
    why = section.split("<strong>Why:</strong>")[1].split("</p>")[0]
    assert "Hemoglobin A1c 7.1 %" in why.split("Also:")[0]
    assert "Glucose (fasting) 8.0 mmol/L" in why.split("Also:")[1]


MODEL_PROBABILITIES = {"healthy": 0.2, "thalassemia_trait": 0.7, "diabetes": 0.1}
CONTRIBUTIONS = [
    {"feature": "mcv", "label": "MCV", "analyte": "mcv", "value": 66.0, "unit": "fL", "contribution": 0.81,
     "direction": "towards", "reference": "below range"},
    {"feature": "hemoglobin", "label": "Haemoglobin", "analyte": "hemoglobin", "value": 14.0, "unit": "g/dL",
     "contribution": -0.12, "direction": "away from", "reference": "within range"},
]  # fmt: skip


def _model_item_rec(patient, probabilities=MODEL_PROBABILITIES):
    prediction = prediction_for(patient, sex=patient.sex, probabilities=probabilities, risk_level="high")
    prediction.contributions, prediction.explanation_method = CONTRIBUTIONS, "tree_path"
    prediction.save()
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)
    return rec


def test_the_models_item_shows_its_top_contributions_and_provenance(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="female", birth_date=datetime.date(1990, 1, 1))
    record(patient, "mcv", 66.0, 2)
    rec = _model_item_rec(patient)
    version = rec.prediction.model_version
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    section = item_html(html, "model_thalassemia_trait_follow_up")
    explanation = section[section.index('data-testid="evidence-explanation"') :]
    assert "explanation-chart" in explanation
    assert "MCV" in explanation
    assert "66 fL · below range" in explanation
    assert "Thalassemia trait”, this item's condition" in explanation
    values = [(text(row[0]), text(row[1]), text(row[5])) for row in evidence_rows(section)]
    assert values[:2] == [
        ("Mean corpuscular volume", "66.0 fL", "HL7 v2 lab feed"),
        # no stored result: the value the model was given
        ("Hemoglobin", "14.0 g/dL", f"the model's input of {timezone.localtime(rec.created_at):%Y-%m-%d}"),
    ]
    provenance = text(section.split('data-testid="evidence-provenance">')[1].split("</p>")[0])
    assert provenance.startswith(f"Model v{version.version}, built {timezone.localtime(version.created_at):%Y-%m-%d}.")
    assert "Trained on this clinic's records: 1,200 patients" in provenance
    assert f"Rules {rec.rules_version}" in provenance
    assert provenance.endswith("Decision support, not a diagnosis.")


def test_a_model_item_for_a_condition_the_model_did_not_explain_says_so(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="female", birth_date=datetime.date(1990, 1, 1))
    # The model explains its single most likely class, CKD; thalassaemia trait ties but comes second.
    rec = _model_item_rec(patient, probabilities={"ckd": 0.5, "thalassemia_trait": 0.5, "healthy": 0.0})
    assert rec.prediction.predicted_class == "ckd"
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    section = item_html(html, "model_thalassemia_trait_follow_up")
    assert "explanation-chart" not in section
    assert "no explanation stored for this item" in text(section)


def test_a_rule_item_names_its_guideline_rule_and_rules_version(client, doctor_a, diabetic):
    rec = generate(diabetic, hba1c=7.2, ldl=2.4)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    section = item_html(html, "diabetes_range_confirm")
    assert f"Guideline rule “HbA1c in the diabetes range”; rules {rec.rules_version}; generated" in section


def test_the_review_read_is_audited_once_with_the_patient(client, doctor_a, diabetic):
    rec = generate(diabetic, hba1c=7.2, ldl=2.4)
    client.force_login(doctor_a)

    client.get(reverse("recommendations:review", args=[rec.pk]))

    [event] = AuditEvent.objects.filter(action="recommendation.view")
    assert (event.actor_id, event.patient_id) == (doctor_a.pk, diabetic.pk)


@pytest.mark.hazard("H12", "Another clinic's doctor, staff and the patient cannot read the evidence of the review")
def test_only_the_clinics_doctors_read_the_review_page(client, diabetic, doctor_b, users_by_role):
    rec = generate(diabetic, hba1c=7.2, ldl=2.4)
    for user in (doctor_b, *users_by_role.values()):
        client.force_login(user)
        response = client.get(reverse("recommendations:review", args=[rec.pk]))
        assert response.status_code == (200 if user == users_by_role["doctor"] else 404), user.username
        assert "HL7 v2 lab feed" not in response.content.decode() or user == users_by_role["doctor"]


def test_the_review_page_reads_the_evidence_in_a_bounded_number_of_queries(
    client, doctor_a, clinic_a, django_assert_max_num_queries
):
    small = PatientFactory(clinic=clinic_a, sex="male", birth_date=datetime.date(1960, 1, 1))
    record(small, "hba1c", 7.2, 2)
    few = generate(small, hba1c=7.2)
    large = PatientFactory(clinic=clinic_a, sex="male", birth_date=datetime.date(1960, 1, 1))
    values = {"hba1c": 7.4, "glucose": 8.2, "ldl": 5.5, "hemoglobin": 9.0, "potassium": 6.2, "sodium": 130.0,
              "platelets": 120.0, "alt": 80.0, "systolic_bp": 150.0, "hs_crp": 4.0}  # fmt: skip
    for days in range(12):
        for code, value in values.items():
            record(large, code, value + days / 10, 2 + days * 30)
    many = generate(large, **values)
    assert many.items.count() >= 10
    client.force_login(doctor_a)
    client.get(reverse("recommendations:review", args=[few.pk]))  # the session's first request also saves it

    counts = []
    for rec in (few, many):
        with django_assert_max_num_queries(14) as queries:
            assert client.get(reverse("recommendations:review", args=[rec.pk])).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.hazard("H1", "A rule's diabetes finding and the model's likely prediabetes reach the doctor as one item")
def test_the_models_likely_condition_on_a_topic_a_rule_covers_adds_no_second_item(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="male", birth_date=datetime.date(1965, 1, 1))
    record(patient, "hba1c", 7.0, 2)
    rec = generate(patient, hba1c=7.0, probabilities={"healthy": 0.1, "prediabetes": 0.6, "diabetes": 0.3})
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    assert 'data-advice="diabetes_range_confirm"' in html
    assert 'data-advice="model_prediabetes_lifestyle"' not in html
    assert 'data-advice="model_diabetes_follow_up"' not in html
    why = text(item_html(html, "diabetes_range_confirm").split("<strong>Why:</strong>")[1].split("</p>")[0])
    assert why.endswith("The model also gives 60% for the pattern of prediabetes.")
