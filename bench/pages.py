"""The portal's pages at clinic scale: each page of a clinic of N patients timed in process, cold and warm.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/pages.py --patients 100000

`load.py` measures the pages under load on the demo clinic of 2,000 patients; this script looks at how each page's
time grows with the clinic. It reads the clinic `bench-N` as `batch_predict.py --patients N` leaves it (patients,
results, diagnoses, a model, the predictions of its batches and the recommendations of the last one), so that
script runs first. A doctor and an admin of the clinic are created once. Each page is requested once with the
figures the pages keep forgotten (cold: what the first visitor waits when the shared cache has none), then
`--repeat` times (warm: the median); the queries are those of a warm request. Sessions and caches are on Redis.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import machine_summary, write_section  # noqa: E402


def _setup() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs on real services.")
    os.environ.update(DJANGO_SETTINGS_MODULE="clinic.settings", DEBUG="false", ALLOWED_HOSTS="testserver")
    os.environ.setdefault("SECRET_KEY", "bench-pages-" + "x" * 40)
    os.environ["CACHE_KEY_PREFIX"] = f"bench-pages-{uuid.uuid4().hex[:8]}"  # keys of its own, nobody else's
    import django

    django.setup()
    from clinic.celery import app

    # No worker runs here: a figure sent to one is computed in the request instead, so the cold column is the time
    # a worker takes to bring it (the page itself says meanwhile that it is being computed).
    app.conf.task_always_eager = True


def _pages(clinic) -> list[tuple[str, str, str]]:
    """(role, label, path) of the pages timed; ids (and the MRN searched) are the clinic's newest patient, batch and
    model version."""
    from mltraining.models import ModelVersion
    from patients.models import Patient
    from predictions.models import PredictionBatch

    patient, mrn = Patient.objects.filter(clinic=clinic).order_by("-pk").values_list("pk", "mrn").first()
    batch = PredictionBatch.objects.filter(clinic=clinic).order_by("-pk").values_list("pk", flat=True).first()
    version = ModelVersion.objects.filter(clinic=clinic).order_by("-pk").values_list("pk", flat=True).first()
    return [
        ("doctor", "home", "/"),
        ("doctor", "patient list", "/patients/"),
        ("doctor", "patient list, name search", "/patients/?q=smith"),
        ("doctor", "patient list, MRN search", f"/patients/?q={mrn.lower()}"),
        ("doctor", "patient list, page 1,000", "/patients/?page=1000"),
        ("doctor", "patient page", f"/patients/{patient}/"),
        ("doctor", "population dashboard", "/patients/dashboard/"),
        ("doctor", "review queue", "/advice/review/"),
        ("doctor", "review dashboard", "/advice/dashboard/"),
        ("doctor", "API: patients", "/api/v1/patients/"),
        ("doctor", "API: review queue", "/api/v1/recommendations/queue/"),
        ("doctor", "API: latest prediction", f"/api/v1/patients/{patient}/predictions/latest/"),
        ("admin", "model dashboard", "/models/dashboard/"),
        ("admin", "model card", f"/models/versions/{version}/card/"),
        ("admin", "batches", "/predictions/batches/"),
        ("admin", "batch", f"/predictions/batches/{batch}/"),
        ("admin", "admin: audit trail", "/admin/clinic/auditevent/"),
        ("admin", "admin: predictions", "/admin/predictions/prediction/"),
        ("admin", "admin: recommendations", "/admin/recommendations/recommendation/"),
    ]


def _clients(clinic) -> dict:
    from django.test import Client

    from clinic.models import User
    from clinic.services import user_create

    clients = {}
    for role in ("doctor", "admin"):
        username = f"bench-pages-{role}"
        user = User.objects.filter(username=username).first()
        if user is None:
            user = user_create(clinic=clinic, username=username, password=secrets.token_urlsafe(24), role=role)
        elif user.clinic_id != clinic.pk:
            User.objects.filter(pk=user.pk).update(clinic=clinic)
            user.refresh_from_db()
        client = Client()
        client.force_login(user)  # signed in without its password: the script never needs it
        clients[role] = client
    return clients


def _time(client, path: str) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        sys.exit(f"{path} answered {response.status_code}")
    return elapsed, len(queries)


def measure(n: int, repeat: int) -> list[str]:
    from clinic.models import Clinic
    from patients.dashboard import dashboard_caches_forget
    from patients.models import Patient
    from predictions.models import Prediction
    from recommendations.models import Recommendation

    clinic = Clinic.objects.filter(slug=f"bench-{n}").first()
    if clinic is None or not Recommendation.objects.filter(clinic=clinic).exists():
        sys.exit(f"No scored clinic bench-{n}: run bench/batch_predict.py --patients {n} first.")
    patients = Patient.objects.filter(clinic=clinic).count()
    predictions = Prediction.objects.filter(patient__clinic=clinic).count()
    recommendations = Recommendation.objects.filter(clinic=clinic).count()
    clients = _clients(clinic)
    lines = [
        f"Clinic of {patients:,} patients, {predictions:,} predictions, {recommendations:,} recommendations.",
        "",
        "| page | cold ms | warm ms (median) | queries (warm) |",
        "|---|---:|---:|---:|",
    ]
    for role, label, path in _pages(clinic):
        client = clients[role]
        dashboard_caches_forget()  # the figures the pages keep, here and in Redis: the next request is a cold one
        cold, _ = _time(client, path)
        warm = [_time(client, path) for _ in range(repeat)]
        median = statistics.median(ms for ms, _ in warm)
        lines.append(f"| {label} `{path}` | {cold:,.0f} | {median:,.0f} | {warm[-1][1]} |")
        print(f"  {label:28s} cold {cold:9.0f} ms, warm {median:9.0f} ms, {warm[-1][1]} queries", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3, help="warm requests per page (default 3)")
    args = parser.parse_args()
    _setup()
    lines = [
        machine_summary(),
        "",
        "Every page of a large clinic (`bench/pages.py`), timed in process, signed in as a doctor or an admin of "
        "the clinic `batch_predict.py` scored. Cold: the first request with the figures the pages keep forgotten "
        "(the shared cache has none: never computed, or not for a week), the figures computed in the request: "
        "with a worker running, that page says they are being computed, and this is how long the worker takes to "
        "bring them (once due, a figure is shown while a worker computes it again); warm: the median of the next "
        "requests. Sessions and caches on Redis, DEBUG off.",
        "",
    ]
    for n in args.patients:
        print(f"pages of the clinic of {n:,} patients", flush=True)
        lines += measure(n, args.repeat) + [""]
    write_section("Pages at clinic scale", "\n".join(lines))


if __name__ == "__main__":
    main()
