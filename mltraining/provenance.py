"""Where a model version's training data came from, and the one line every score carries about it.

`provenance_build` counts, at training time, which patients the model learned from (how many the synthetic demo
seeded, how many came with an import, by source) and who vouches for their diagnoses (a doctor of the clinic, a
trusted import source, the demo generator). `provenance_sentence` turns that into the one short line shown
wherever a score appears: the risk card, the review page, the advice's rationale, the API, the FHIR
RiskAssessment, the model card and dashboard. Plain Python: no Django, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SCHEMA = 1
DEMO = "demo"  # the observation source of the synthetic demo cohort
NOT_RECORDED = "Training data not recorded: this version was trained before provenance was kept."


def provenance_build(
    *,
    patient_ids: Iterable[int],
    patient_sources: Iterable[tuple[int, str]],
    observation_sources: Mapping[str, int],
    label_origins: Mapping[str, int],
    trusted_sources: Iterable[str],
) -> dict[str, Any]:
    """The provenance of a model trained on `patient_ids`.

    `patient_sources`: (patient id, source) for each source of each patient's results (`demo` = seeded by the
    demo); `observation_sources`: the clinic's results by source; `label_origins`: confirmed target diagnoses of
    those patients by who vouches for them (doctor, trusted, demo).
    """
    trained = set(patient_ids)
    by_source: dict[str, set[int]] = {}
    for patient_id, source in patient_sources:
        if patient_id in trained:
            by_source.setdefault(source, set()).add(patient_id)
    synthetic_patients = len(by_source.get(DEMO, ()))
    labels = {origin: int(n) for origin, n in label_origins.items() if origin}
    total_observations = sum(observation_sources.values())
    return {
        "schema": SCHEMA,
        "patients": len(trained),
        "synthetic_patients": synthetic_patients,
        "patients_by_source": {source: len(ids) for source, ids in sorted(by_source.items())},
        "observations_by_source": {source: int(n) for source, n in sorted(observation_sources.items())},
        "labels": {"doctor": labels.get("doctor", 0), "trusted": labels.get("trusted", 0), "demo": labels.get(DEMO, 0)},
        "trusted_sources": sorted(trusted_sources),
        "synthetic": synthetic_patients > 0 or labels.get(DEMO, 0) > 0,
        "synthetic_share": (observation_sources.get(DEMO, 0) / total_observations) if total_observations else 0.0,
    }


def is_synthetic(provenance: Mapping[str, Any] | None) -> bool:
    """Trained (in part or whole) on the synthetic demo cohort: such a version may be active only in a demo clinic."""
    return bool((provenance or {}).get("synthetic"))


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def provenance_sentence(provenance: Mapping[str, Any] | None) -> str:
    """One short line: "Trained on synthetic demo data (2,000 patients)." or "Trained on this clinic's records:
    1,204 patients, 310 doctor-confirmed diagnoses." (with ", 52 from a trusted import source" when some were)."""
    if not provenance:
        return NOT_RECORDED
    patients = int(provenance.get("patients") or 0)
    labels = provenance.get("labels")
    if is_synthetic(provenance):
        synthetic = provenance.get("synthetic_patients")
        if synthetic is None:  # recorded before patients were counted by source: the share of results is known
            share = float(provenance.get("synthetic_share") or 0.0)
            if share >= 1.0:
                return f"Trained on synthetic demo data ({_count(patients, 'patient', 'patients')})."
            return f"Trained partly on synthetic demo data ({share:.0%} of the results of {patients:,} patients)."
        if synthetic >= patients:
            return f"Trained on synthetic demo data ({_count(patients, 'patient', 'patients')})."
        return f"Trained partly on synthetic demo data ({synthetic:,} of {_count(patients, 'patient', 'patients')})."
    parts = [_count(patients, "patient", "patients")]
    if labels is None:
        parts.append("who confirmed its diagnoses was not recorded")
    else:
        parts.append(_count(int(labels.get("doctor") or 0), "doctor-confirmed diagnosis", "doctor-confirmed diagnoses"))
        if labels.get("trusted"):
            parts.append(f"{int(labels['trusted']):,} from a trusted import source")
    return f"Trained on this clinic's records: {', '.join(parts)}."
