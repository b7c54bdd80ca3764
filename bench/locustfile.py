"""The load benchmark's clients, run headless by `bench/load.py`, one target at a time.

BENCH_LOAD_CONFIG names a JSON file: `paths` (each request picks one at random), `headers` (one set per client:
its session cookie or API token, none for the bare view) and `samples`, where every request's start time,
duration and outcome are written when the run ends, so load.py computes exact percentiles itself.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, events, task

CONFIG = json.loads(Path(os.environ["BENCH_LOAD_CONFIG"]).read_text())
SAMPLES: list[tuple[float, float, bool]] = []
_clients = itertools.count()


@events.request.add_listener
def _record(start_time: float, response_time: float, response, exception, **kwargs) -> None:
    ok = exception is None and response is not None and response.status_code == 200
    SAMPLES.append((start_time, response_time, ok))


@events.quitting.add_listener
def _write(**kwargs) -> None:
    Path(CONFIG["samples"]).write_text(json.dumps(SAMPLES))


class Client(FastHttpUser):
    wait_time = constant(0)  # closed loop: each client sends its next request as soon as the last one returns

    def on_start(self) -> None:
        headers = CONFIG["headers"]
        self.headers = headers[next(_clients) % len(headers)]

    @task
    def get(self) -> None:
        # No redirects: a lost session would otherwise count the login page as a success.
        self.client.get(random.choice(CONFIG["paths"]), headers=self.headers, name="target", allow_redirects=False)  # noqa: S311
