"""The load benchmark's clients, run headless by `bench/load.py`, one target at a time.

BENCH_LOAD_CONFIG names a JSON file:

- `kinds`: the requests a client sends, each `{"name", "weight", "auth", "method", "paths", "expect"}`; every
  request picks a kind by weight and one of its paths at random. A POST kind also has `form`, the analytes of a
  small panel with the range each value is drawn from (`bench/load.py` makes the patients it writes to);
- `headers`: per authentication ("none", "session", "token") one set per client (its session cookie, with the CSRF
  token a form needs, or the API token);
- `think`: `[low, high]` seconds a client waits between requests (a clinician reading the page), or null for none;
- `samples`: where every request's start time, duration, outcome and kind are written when the run ends, so
  load.py computes exact percentiles itself.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import random
from pathlib import Path
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, between, constant, events, task

CONFIG = json.loads(Path(os.environ["BENCH_LOAD_CONFIG"]).read_text())
KINDS = CONFIG["kinds"]
WEIGHTS = [kind["weight"] for kind in KINDS]
EXPECT = {kind["name"]: kind["expect"] for kind in KINDS}
THINK = CONFIG.get("think")
SAMPLES: list[tuple[float, float, bool, str]] = []
_clients = itertools.count()


@events.request.add_listener
def _record(name: str, start_time: float, response_time: float, response, exception, **kwargs) -> None:
    # A lost session redirects to the login page: never a success, whatever the status expected.
    ok = (
        exception is None
        and response is not None
        and response.status_code == EXPECT[name]
        and "/accounts/login/" not in (response.headers.get("Location") or "")
    )
    SAMPLES.append((start_time, response_time, ok, name))


@events.quitting.add_listener
def _write(**kwargs) -> None:
    Path(CONFIG["samples"]).write_text(json.dumps(SAMPLES))


def _panel(form: dict[str, list[float]], csrf: str) -> dict[str, str]:
    """A small panel of ordinary values, taken at a past minute of the last month (never in the future, whatever
    the clinic's time zone), so each entry writes new results."""
    taken = datetime.datetime.now() - datetime.timedelta(days=1, minutes=random.randrange(30 * 24 * 60))  # noqa: DTZ005, S311
    fields = {code: f"{random.uniform(low, high):.1f}" for code, (low, high) in form.items()}  # noqa: S311
    return {"effective_at": taken.strftime("%Y-%m-%dT%H:%M"), "csrfmiddlewaretoken": csrf, **fields}


class Client(FastHttpUser):
    # Closed loop: each client sends its next request when the last one returns, after its think time if any.
    wait_time = between(*THINK) if THINK else constant(0)

    def on_start(self) -> None:
        n = next(_clients)
        self.auth = {auth: sets[n % len(sets)] for auth, sets in CONFIG["headers"].items()}
        if THINK:
            # Clinicians do not all open a page the moment they arrive: the first request waits a random part of
            # the longest think time, so the ramp-up is not a burst.
            gevent.sleep(random.uniform(0, THINK[1]))  # noqa: S311

    @task
    def request(self) -> None:
        kind = random.choices(KINDS, weights=WEIGHTS)[0]  # noqa: S311
        path = random.choice(kind["paths"])  # noqa: S311
        headers = self.auth[kind["auth"]]
        # No redirects: a lost session would otherwise count the login page as a success.
        if kind["method"] == "POST":
            body = urlencode(_panel(kind["form"], headers.get("X-CSRFToken", "")))
            form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
            self.client.post(path, data=body, headers=form, name=kind["name"], allow_redirects=False)
        else:
            self.client.get(path, headers=headers, name=kind["name"], allow_redirects=False)
