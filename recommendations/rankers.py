"""The clinic's fitted feedback ranker: rebuilt from its doctors' decisions, stored, and cached per process."""

from __future__ import annotations

import io
import logging
import zipfile

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Max

from recommendations.models import FeedbackEvent, FeedbackOutcome, RankerSnapshot
from recommendations.profiles import PROFILE_COLUMNS, profile_row
from recommendations.ranking import Ranker, RankerParams, ranker_fit

logger = logging.getLogger(__name__)
DECISIONS = [FeedbackOutcome.ACCEPTED, FeedbackOutcome.OVERRIDDEN]
MIN_EVENTS = 20  # fewer decisions than this teach nothing: no ranker, no lift
_cache: dict[int, tuple[int, Ranker | None]] = {}  # clinic id -> (snapshot version, ranker), per process


def _dump(ranker: Ranker) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{key: np.asarray(value) for key, value in ranker.to_dict().items()})
    return buffer.getvalue()


def _load(data: bytes) -> Ranker:
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as arrays:
        return Ranker.from_dict({key: arrays[key] for key in arrays.files})


def ranker_for(*, clinic_id: int) -> tuple[Ranker | None, int | None]:
    """The clinic's newest ranker and its version, or (None, None) before enough feedback exists.

    A snapshot that cannot be read is logged once per process and treated as no ranker: advice is then ordered
    without the feedback lift, never held up by it.
    """
    version = RankerSnapshot.objects.filter(clinic_id=clinic_id).aggregate(v=Max("version"))["v"]
    if version is None:
        return None, None
    cached = _cache.get(clinic_id)
    if cached is None or cached[0] != version:
        data = RankerSnapshot.objects.values_list("data", flat=True).get(clinic_id=clinic_id, version=version)
        try:
            ranker = _load(data)
        except (EOFError, OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):  # numpy's and from_dict's
            logger.exception("Feedback ranker v%s of clinic %s cannot be read; advice is ranked without it",
                             version, clinic_id)  # fmt: skip
            ranker = None
        _cache[clinic_id] = (version, ranker)
    ranker = _cache[clinic_id][1]
    return (ranker, version) if ranker is not None else (None, None)


def feedback_frames(*, clinic_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clinic's approve / reject decisions (its doctors' and its EHR users' feedback), and the profile of each
    reviewed patient (as last reviewed)."""
    rows = (
        FeedbackEvent.objects.filter(clinic_id=clinic_id, outcome__in=DECISIONS)
        .order_by("created_at", "pk")
        .values_list(
            "patient_id", "advice__code", "clinician_id", "ehr_user", "outcome", "created_at", "position",
            "item__recommendation__prediction__inputs", "item__recommendation__prediction__probabilities",
        )
    )  # fmt: skip
    events, profiles = [], {}
    for patient_id, advice, clinician_id, ehr_user, outcome, at, position, inputs, probabilities in rows.iterator(2000):
        # A clinician in an EHR (CDS Hooks feedback) is one more clinician, capped like the clinic's own doctors.
        who = clinician_id if clinician_id is not None else f"ehr:{ehr_user}"
        events.append((patient_id, advice, who, outcome == FeedbackOutcome.ACCEPTED, at, position))
        profiles[patient_id] = profile_row(inputs or {}, probabilities or {})
    events_frame = pd.DataFrame(events, columns=["patient_id", "item", "clinician_id", "accepted", "at", "position"])
    profile_frame = pd.DataFrame.from_dict(profiles, orient="index", columns=list(PROFILE_COLUMNS))
    profile_frame.index.name = "patient_id"
    return events_frame, profile_frame


@transaction.atomic
def ranker_rebuild(*, clinic_id: int, params: RankerParams | None = None) -> RankerSnapshot | None:
    """Fit the clinic's ranker on all its decisions so far and store it as the next version.

    Two rebuilds at once collide on the unique (clinic, version) and one of them fails: nothing is half-written.
    """
    events, profiles = feedback_frames(clinic_id=clinic_id)
    if len(events) < MIN_EVENTS:
        logger.info("Clinic %s has %s decisions; no ranker before %s.", clinic_id, len(events), MIN_EVENTS)
        return None
    params = params or RankerParams()
    ranker = ranker_fit(events=events, profiles=profiles, params=params)
    latest = RankerSnapshot.objects.filter(clinic_id=clinic_id).aggregate(v=Max("version"))["v"]
    return RankerSnapshot.objects.create(
        clinic_id=clinic_id, version=(latest or 0) + 1, events=len(events), patients=len(profiles),
        params=params.__dict__, data=_dump(ranker),
    )  # fmt: skip
