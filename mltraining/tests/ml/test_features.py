"""build_features and the feature schema, on small frames built here (no database)."""

import datetime
import json
import math

import numpy as np
import pandas as pd
import pytest

from mltraining.ml import features
from mltraining.ml.features import CATEGORICAL, FEATURES, NUMERIC, build_features, feature_schema

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def _at(days_before: float) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days_before)


def _obs(*rows) -> pd.DataFrame:
    """Rows of (patient_id, analyte, value, days before AS_OF)."""
    return pd.DataFrame(
        {
            "patient_id": [r[0] for r in rows],
            "analyte": [r[1] for r in rows],
            "value": [float(r[2]) for r in rows],
            "effective_at": pd.DatetimeIndex([_at(r[3]) for r in rows], tz="UTC"),
        }
    )


def _patients(*people) -> pd.DataFrame:
    defaults = {
        "sex": "female",
        "birth_date": datetime.date(1975, 1, 1),
        "smoking": "never",
        "alcohol": "none",
        "physical_activity": "active",
        "diet": "healthy",
        "family_history_diabetes": False,
        "family_history_cardiovascular": False,
        "family_history_anemia": False,
    }
    return pd.DataFrame([defaults | person for person in people], columns=list(features.PATIENT_COLUMNS))


def _build(obs: pd.DataFrame, patients: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return build_features(obs, patients, as_of=AS_OF, **kwargs)


def test_the_analyte_list_mirrors_the_catalog():
    from patients.catalog_data import ANALYTES as CATALOG

    not_read = features.RULES_ONLY + features.RECORD_ONLY
    assert set(not_read) <= {a.code for a in CATALOG}
    assert len(set(not_read)) == len(not_read)
    ANALYTES = [a for a in CATALOG if a.code not in not_read]
    assert [(a.code, a.kind, a.unit) for a in ANALYTES] == [(c, k, u) for c, _, k, u in features.ANALYTES]
    for spec, feature in zip(ANALYTES, FEATURES, strict=False):
        assert feature.analyte == spec.code
        assert feature.source == spec.kind
        if spec.kind != "wearable":  # wearable labels add "(daily mean)"
            assert feature.label == spec.name


def test_the_schema_is_json_and_splits_into_numeric_and_categorical():
    schema = json.loads(json.dumps(feature_schema()))

    names = [f["name"] for f in schema["features"]]
    assert names == [f.name for f in FEATURES]
    assert len(set(names)) == len(names)
    assert sorted(NUMERIC + CATEGORICAL) == sorted(names)
    assert schema["version"]
    assert {f["source"] for f in schema["features"]} <= {
        "lab",
        "vital",
        "wearable",
        "derived",
        "demographic",
        "lifestyle",
        "family_history",
    }
    egfr = next(f for f in schema["features"] if f["name"] == "egfr")
    assert egfr == {
        "name": "egfr",
        "kind": "numeric",
        "label": "eGFR (CKD-EPI 2021)",
        "unit": "mL/min/{1.73_m2}",
        "source": "derived",
        "analyte": None,
    }


def test_one_row_per_patient_in_the_given_order_with_the_schema_columns():
    obs = _obs((1, "glucose", 5.0, 3), (2, "glucose", 6.0, 3))

    X = _build(obs, _patients({"patient_id": 3}, {"patient_id": 1}, {"patient_id": 2}))

    assert list(X.columns) == [f.name for f in FEATURES]
    assert list(X.index) == [3, 1, 2]
    assert X.index.name == "patient_id"
    assert X.loc[[3, 1, 2], "glucose"].tolist()[1:] == [5.0, 6.0]
    assert math.isnan(X.loc[3, "glucose"])


def test_the_latest_value_within_the_window_is_used_and_nothing_after_as_of():
    obs = _obs(
        (1, "hba1c", 9.9, -1),  # after as_of: the future, never used
        (1, "hba1c", 6.1, 10),  # latest in the window
        (1, "hba1c", 5.5, 100),
        (1, "hba1c", 8.8, 731),  # before the 730-day window
        (2, "hba1c", 7.0, 731),  # only before the window
        (3, "hba1c", 7.0, -0.5),  # only after as_of
    ).sample(frac=1, random_state=1)  # input order must not matter

    X = _build(obs, _patients({"patient_id": 1}, {"patient_id": 2}, {"patient_id": 3}))

    assert X.loc[1, "hba1c"] == 6.1
    assert X.loc[[2, 3], "hba1c"].isna().all()


def test_the_window_bounds_are_inclusive():
    obs = _obs((1, "hemoglobin", 13.0, 0), (2, "hemoglobin", 14.0, 730), (3, "hemoglobin", 15.0, 30))

    X = _build(obs, _patients({"patient_id": 1}, {"patient_id": 2}, {"patient_id": 3}), window_days=730)
    short = _build(obs, _patients({"patient_id": 3}), window_days=29)

    assert X["hemoglobin"].tolist() == [13.0, 14.0, 15.0]
    assert math.isnan(short.loc[3, "hemoglobin"])


def test_an_analyte_with_a_recency_window_is_not_read_past_it():
    obs = _obs((1, "ldl", 3.0, 365), (2, "ldl", 4.0, 366), (2, "hemoglobin", 14.0, 700), (3, "troponin", 50.0, 8))

    X = _build(obs, _patients({"patient_id": 1}, {"patient_id": 2}, {"patient_id": 3}), window_days=730)

    assert X.loc[1, "ldl"] == 3.0
    assert math.isnan(X.loc[2, "ldl"])  # a year and a day: not shown to the model as current
    assert X.loc[2, "hemoglobin"] == 14.0
    assert math.isnan(X.loc[3, "troponin"])


def test_the_recency_windows_are_the_catalogs():
    from patients.catalog_data import RECENCY

    assert {code: days for code, (days, _) in RECENCY.items() if code in features.NUMERIC} == features.RECENT_DAYS


def test_missing_inputs_names_each_required_group_a_row_has_no_value_of():
    obs = _obs((1, "hemoglobin", 14.0, 1), (1, "glucose", 5.0, 1), (1, "creatinine", 80.0, 1), (1, "ldl", 3.0, 1),
               (2, "hemoglobin", 14.0, 1), (2, "hba1c", 5.2, 1), (2, "hba1c", 5.2, 1))  # fmt: skip

    X = _build(obs, _patients({"patient_id": 1}, {"patient_id": 2}, {"patient_id": 3}))

    assert features.missing_inputs(X) == [
        [],
        ["creatinine"],
        ["haemoglobin (a blood count)", "HbA1c or fasting glucose", "creatinine"],
    ]


def test_of_two_results_at_the_same_time_the_one_given_last_wins():
    obs = _obs((1, "potassium", 4.0, 2), (1, "potassium", 4.6, 2))

    assert _build(obs, _patients({"patient_id": 1})).loc[1, "potassium"] == 4.6


def test_wearables_are_the_mean_of_daily_values_over_the_last_30_days():
    # One value per day at noon, 1 to 40 days back: days 1-30 are inside (as_of - 30 days, as_of].
    rows = [(1, "steps", 1000 * k, k - 0.5) for k in range(1, 41)]
    rows += [(1, "sleep_duration", 6.0, 1.5), (1, "sleep_duration", 8.0, 2.5)]
    rows += [(1, "resting_heart_rate", 64, 3.4), (1, "resting_heart_rate", 60, 3.5)]  # one day sent twice
    rows += [(1, "steps", 99999, -0.5)]  # tomorrow

    X = _build(_obs(*rows), _patients({"patient_id": 1}, {"patient_id": 2}))

    assert X.loc[1, "steps"] == pytest.approx(np.mean([1000 * k for k in range(1, 31)]))
    assert X.loc[1, "sleep_duration"] == pytest.approx(7.0)
    assert X.loc[1, "resting_heart_rate"] == pytest.approx(64.0)  # the later of the day, not their mean
    assert X.loc[2, ["steps", "sleep_duration", "resting_heart_rate"]].isna().all()
    assert _build(_obs(*rows), _patients({"patient_id": 1}), wearable_days=7).loc[1, "steps"] == pytest.approx(4000)


def _egfr(creatinine_mg_dl: float, age: int, female: bool) -> float:
    """CKD-EPI 2021, written out from Inker et al., NEJM 2021;385:1737-49, independently of features.py."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    return 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age * (1.012 if female else 1.0)


def test_egfr_follows_ckd_epi_2021_and_the_worked_examples():
    patients = _patients(
        {"patient_id": 1, "sex": "female", "birth_date": datetime.date(1975, 6, 1)},  # 50 at as_of
        {"patient_id": 2, "sex": "male", "birth_date": datetime.date(1965, 5, 31)},  # 60
        {"patient_id": 3, "sex": "female", "birth_date": datetime.date(1995, 1, 1)},  # 30
    )
    obs = _obs(
        (1, "creatinine", 88.42, 5),  # 1.0 mg/dL
        (2, "creatinine", 88.42, 5),  # 1.0 mg/dL
        (3, "creatinine", 0.6 * 88.42, 5),  # 0.6 mg/dL: below kappa, so the alpha term applies
    )

    egfr = _build(obs, patients)["egfr"]

    assert egfr.tolist() == pytest.approx([_egfr(1.0, 50, True), _egfr(1.0, 60, False), _egfr(0.6, 30, True)])
    # The worked examples: a 50-year-old woman and a 60-year-old man, each with creatinine 1.0 mg/dL, have an
    # eGFR of about 68 and about 86 mL/min/1.73 m2 (by hand: 142 x (1/0.7)^-1.2 x 0.9938^50 x 1.012 = 68.6;
    # 142 x (1/0.9)^-1.2 x 0.9938^60 = 86.2).
    assert egfr[1] == pytest.approx(68.6, abs=0.05)
    assert egfr[2] == pytest.approx(86.2, abs=0.05)
    # At creatinine = kappa both min/max terms are 1: 142 x 0.9938^30 x 1.012 for a 30-year-old woman at 0.7.
    at_kappa = _build(_obs((3, "creatinine", 0.7 * 88.42, 5)), patients.iloc[[2]])
    assert at_kappa.loc[3, "egfr"] == pytest.approx(142 * 0.9938**30 * 1.012)


def test_egfr_is_missing_without_a_binary_sex_an_adult_age_or_creatinine():
    patients = _patients(
        {"patient_id": 1, "sex": "other"},
        {"patient_id": 2, "sex": "unknown"},
        {"patient_id": 3, "sex": None},
        {"patient_id": 4, "sex": "male", "birth_date": datetime.date(2010, 1, 1)},  # 15
        {"patient_id": 5, "sex": "male", "birth_date": None},
        {"patient_id": 6, "sex": "male"},  # no creatinine
    )
    obs = _obs(*[(pid, "creatinine", 80.0, 1) for pid in range(1, 6)])

    X = _build(obs, patients)

    assert X["egfr"].isna().all()
    assert X.loc[[1, 2, 4], "creatinine"].tolist() == [80.0, 80.0, 80.0]


def test_derived_features_on_hand_computed_values():
    obs = _obs(
        (1, "total_cholesterol", 5.2, 1),
        (1, "hdl", 1.3, 1),
        (1, "glucose", 5.0, 1),
        (1, "insulin", 9.0, 1),
        (1, "mcv", 65.0, 1),
        (1, "rbc", 5.0, 1),
        (1, "systolic_bp", 120, 1),
        (1, "diastolic_bp", 81, 1),
    )

    row = _build(obs, _patients({"patient_id": 1})).loc[1]

    assert row["total_hdl_ratio"] == pytest.approx(4.0)  # 5.2 / 1.3
    assert row["non_hdl_cholesterol"] == pytest.approx(3.9)  # 5.2 - 1.3
    assert row["homa_ir"] == pytest.approx(2.0)  # 5.0 x 9.0 / 22.5
    assert row["mentzer_index"] == pytest.approx(13.0)  # 65 / 5.0
    assert row["mean_arterial_pressure"] == pytest.approx(94.0)  # 81 + (120 - 81) / 3


def test_bmi_class_uses_the_who_cut_points():
    bmis = [17.0, 18.5, 24.99, 25.0, 29.9, 30.0, 41.0]
    obs = _obs(*[(i, "bmi", bmi, 1) for i, bmi in enumerate(bmis)])

    X = _build(obs, _patients(*[{"patient_id": i} for i in range(len(bmis) + 1)]))

    assert X["bmi_class"].tolist()[:-1] == [
        "underweight",
        "normal",
        "normal",
        "overweight",
        "overweight",
        "obese",
        "obese",
    ]
    assert pd.isna(X["bmi_class"].iloc[-1])


def test_age_is_completed_years_on_the_as_of_date():
    patients = _patients(
        {"patient_id": 1, "birth_date": datetime.date(1980, 6, 1)},  # birthday today
        {"patient_id": 2, "birth_date": datetime.date(1980, 6, 2)},  # birthday tomorrow
        {"patient_id": 3, "birth_date": np.datetime64("2000-01-15")},
    )

    assert _build(_obs(), patients)["age"].tolist() == [45.0, 44.0, 25.0]


def test_unknown_demographics_lifestyle_and_family_history_are_explicit():
    patients = _patients(
        {"patient_id": 1, "family_history_diabetes": True, "family_history_anemia": None},
        {"patient_id": 2, "sex": None, "smoking": None, "diet": "", "family_history_cardiovascular": None},
    )

    X = _build(_obs(), patients)

    assert X.loc[1, ["family_history_diabetes", "family_history_cardiovascular", "family_history_anemia"]].tolist() == [
        "yes",
        "no",
        "unknown",
    ]
    assert X.loc[2, ["sex", "smoking", "diet", "family_history_cardiovascular"]].tolist() == ["unknown"] * 4
    assert X.loc[1, ["sex", "smoking", "alcohol", "physical_activity"]].tolist() == [
        "female",
        "never",
        "none",
        "active",
    ]


def test_family_history_reads_nullable_booleans_and_all_missing_columns():
    patients = _patients({"patient_id": 1}, {"patient_id": 2}, {"patient_id": 3})
    patients["family_history_diabetes"] = pd.array([True, False, None], dtype="boolean")
    patients["family_history_anemia"] = np.nan  # an all-missing column arrives as float
    patients["sex"] = np.nan

    X = _build(_obs(), patients)

    assert X["family_history_diabetes"].tolist() == ["yes", "no", "unknown"]
    assert X["family_history_anemia"].tolist() == ["unknown"] * 3
    assert X["sex"].tolist() == ["unknown"] * 3


def test_missing_everything_gives_nan_not_an_error():
    empty = pd.DataFrame(columns=list(features.OBSERVATION_COLUMNS))
    patients = _patients({"patient_id": 1, "sex": None, "birth_date": None, "smoking": None})

    X = build_features(empty, patients, as_of=AS_OF)

    assert X.loc[1, NUMERIC].isna().all()
    assert pd.isna(X.loc[1, "bmi_class"])
    assert X.loc[1, "sex"] == "unknown"
    assert build_features(empty, patients.iloc[:0], as_of=AS_OF).shape == (0, len(FEATURES))


def test_rows_of_other_patients_unknown_analytes_and_missing_values_are_ignored():
    obs = _obs((1, "glucose", 5.0, 5), (1, "not_an_analyte", 1.0, 1), (9, "glucose", 7.0, 1), (1, "glucose", 6.0, 1))
    obs.loc[3, "value"] = np.nan  # a missing result does not hide the one before it

    X = _build(obs, _patients({"patient_id": 1}))

    assert X.loc[1, "glucose"] == 5.0


def test_values_are_passed_through_without_unit_conversion():
    # Creatinine 1.1 "umol/L" is really mg/dL: left as is, so drift detection can see it.
    X = _build(_obs((1, "creatinine", 1.1, 1)), _patients({"patient_id": 1}))

    assert X.loc[1, "creatinine"] == 1.1


def test_naive_times_are_refused():
    patients = _patients({"patient_id": 1})
    obs = _obs((1, "glucose", 5.0, 1))

    with pytest.raises(ValueError, match="as_of"):
        build_features(obs, patients, as_of=pd.Timestamp("2025-06-01"))
    with pytest.raises(ValueError, match="effective_at"):
        build_features(obs.assign(effective_at=obs["effective_at"].dt.tz_localize(None)), patients, as_of=AS_OF)


def test_duplicate_patients_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        _build(_obs(), _patients({"patient_id": 1}, {"patient_id": 1}))


def test_the_demo_cohort_gives_coherent_features():
    from patients.demo_cohort import generate_cohort

    cohort = generate_cohort(600, seed=3, today=datetime.date(2025, 6, 1))
    ids = np.arange(1, 601)
    obs = pd.DataFrame(
        {
            "patient_id": ids[cohort.obs_patient],
            "analyte": cohort.obs_analyte,
            "value": cohort.obs_value,
            "effective_at": pd.to_datetime(cohort.obs_time).tz_localize("UTC"),
        }
    )
    patients = pd.DataFrame({"patient_id": ids, "sex": cohort.sex, "birth_date": cohort.birth_date})
    for name in (*features.LIFESTYLE, *features.FAMILY_HISTORY):
        patients[name] = getattr(cohort, name)

    X = build_features(obs, patients, as_of=AS_OF)

    thal = cohort.truth["thalassemia_trait"]
    assert X["mentzer_index"][thal].median() < 13 < X["mentzer_index"][~thal].median()
    assert X["egfr"][cohort.truth["ckd"]].median() < X["egfr"][~cohort.truth["ckd"]].median()
    assert X["age"].between(18, 91).all()
    assert X["steps"].notna().any()


def test_the_normal_ranges_are_the_catalogs_adult_ranges():
    from patients.catalog_data import ANALYTES as CATALOG

    for spec in CATALOG:
        if spec.code not in features.NORMAL_RANGES:
            assert spec.kind == "wearable" or not spec.ranges or spec.code not in features.NUMERIC, spec.code
            continue
        adult = [r for r in spec.ranges if r.age_min <= 18]
        by_sex = {r.sex: (r.low, r.high) for r in adult}
        female, male = features.NORMAL_RANGES[spec.code]
        assert female == by_sex.get("female", by_sex.get("")), spec.code
        assert male == by_sex.get("male", by_sex.get("")), spec.code


def test_the_normal_masker_and_the_outside_check_follow_each_rows_own_reference_range():
    """Every lab at once, in numpy, must give what reading each row's range for its sex gives: a value inside its
    range (bounds included) or not measured reads as the range's typical value, any other stays; a row is outside
    when one value is outside (not measured is not outside)."""
    from mltraining.ml.candidates import NormalMasker, typical_normal

    rng = np.random.default_rng(4)
    codes = [code for code in features.NORMAL_RANGES if code in NUMERIC]
    sexes = ["female", "male", "other", "unknown", None] * 8
    rows = []
    for n, sex in enumerate(sexes):
        row = {"sex": sex, "age": 30 + n}
        for code in codes:
            low, high = features.normal_range(code, str(sex))
            finite = high if np.isfinite(high) else 2 * low
            row[code] = [np.nan, low, high, finite * rng.uniform(0.2, 2.5)][(n + len(row)) % 4]
        rows.append(row)
    rows.append({"sex": "female", "age": 50, **{code: features.normal_range(code, "female")[0] for code in codes}})
    rows.append({"sex": "male", "age": 50, **dict.fromkeys(codes, np.nan)})
    X = pd.DataFrame(rows)

    masked, outside = NormalMasker().transform(X), features.any_outside_range(X)

    for i, row in enumerate(rows):
        row_outside = False
        for code in codes:
            low, high = features.normal_range(code, str(row["sex"]))
            value = row[code]
            inside_or_missing = math.isnan(value) or low <= value <= high
            row_outside |= not inside_or_missing
            assert masked.at[i, code] == (float(typical_normal(low, high)) if inside_or_missing else value), (i, code)
        assert outside[i] == row_outside, i
    assert outside.any()
    assert not outside.all()


def test_a_frame_without_any_lab_is_nowhere_outside_its_range_and_masks_nothing():
    X = pd.DataFrame({"sex": ["female", "male", None], "age": [40.0, 50.0, 60.0]})

    from mltraining.ml.candidates import NormalMasker

    assert features.any_outside_range(X).tolist() == [False, False, False]
    pd.testing.assert_frame_equal(NormalMasker().transform(X), X)
