"""A Celery worker whose training runs can hold their worker for as long as a test needs.

Started by `clinic/tests/test_queues_worker.py` as `celery -A clinic.tests.held_training_worker worker`: the
clinic's own app, with one more training candidate, `held`, a dummy classifier whose first fit writes the file
HELD_TRAINING_STARTED and then waits until the file HELD_TRAINING_GATE exists (at most five minutes). A run with
this candidate occupies its worker like a long training, as long as the test keeps the gate shut.
"""

import os
import time
from pathlib import Path

import django
from sklearn.dummy import DummyClassifier

from clinic.celery import app

django.setup()

from mltraining.ml.candidates import CANDIDATES  # noqa: E402  (needs the apps loaded)

__all__ = ["app"]

HOLD_AT_MOST = 300.0  # seconds: a test that died never keeps its worker for good


class HeldClassifier(DummyClassifier):
    def __init__(self, *, strategy="prior", random_state=None, constant=None, gate="", started=""):
        super().__init__(strategy=strategy, random_state=random_state, constant=constant)
        self.gate, self.started = gate, started

    def fit(self, X, y, sample_weight=None):
        Path(self.started).touch()
        deadline = time.monotonic() + HOLD_AT_MOST
        while not Path(self.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        return super().fit(X, y, sample_weight=sample_weight)


CANDIDATES["held"] = lambda seed: HeldClassifier(
    random_state=seed, gate=os.environ["HELD_TRAINING_GATE"], started=os.environ["HELD_TRAINING_STARTED"]
)
