"""Each task goes to the queue of its kind of work, and every queue has a worker on one box and in compose."""

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from clinic.celery import app
from clinic.testing import ROOT

QUEUES = {"interactive", "default", "batch", "training"}


def _registered_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def _queue_of(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_every_registered_task_has_a_route_so_none_falls_into_a_queue_by_default():
    assert _registered_tasks() - set(settings.CELERY_TASK_ROUTES) == set()


def test_every_route_names_a_registered_task_and_a_queue_of_a_kind():
    assert set(settings.CELERY_TASK_ROUTES) - _registered_tasks() == set()
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} == QUEUES


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("mltraining.tasks.train_model_task", "training"),
        ("mltraining.tasks.clinic_retraining", "training"),
        ("predictions.tasks.score_chunk", "batch"),
        ("predictions.tasks.clinic_batch_scoring", "batch"),
        ("mltraining.tasks.clinic_drift_check", "batch"),
        ("patients.tasks.import_job_run", "batch"),
        ("predictions.tasks.predict_patients", "interactive"),
        ("patients.tasks.dashboard_figure_refresh", "interactive"),
        ("clinic.tasks.outbox_drain", "default"),
        ("patients.tasks.escalate_critical_results", "default"),
        ("clinic.tasks.nightly_dispatch", "default"),
    ],
)
def test_a_task_is_sent_to_the_queue_of_its_kind(task, queue):
    assert _queue_of(task) == queue


def test_every_task_is_routed_by_the_app_to_the_queue_its_route_names():
    for name, route in settings.CELERY_TASK_ROUTES.items():
        assert _queue_of(name) == route["queue"], name


def _queues_of(command: str) -> set[str]:
    return set(re.search(r"--queues[ =](\S+)", command).group(1).split(","))


def test_make_worker_takes_every_queue_and_each_per_kind_target_its_own():
    makefile = (Path(ROOT) / "Makefile").read_text()
    targets = dict(re.findall(r"^(worker[-\w]*): .*\n\t(.+)$", makefile, flags=re.MULTILINE))

    assert _queues_of(targets["worker"]) == QUEUES
    assert {kind: _queues_of(targets[f"worker-{kind}"]) for kind in QUEUES} == {kind: {kind} for kind in QUEUES}


def _celery_worker(service: dict) -> bool:
    command = service.get("command")
    return isinstance(command, list) and command[:1] == ["celery"] and "worker" in command


def test_compose_runs_a_worker_per_kind_with_a_healthcheck_and_a_grace_for_its_longest_task():
    services = yaml.safe_load((Path(ROOT) / "docker-compose.yml").read_text())["services"]
    workers = {name: service for name, service in services.items() if _celery_worker(service)}

    consumed = {name: _queues_of(" ".join(service["command"])) for name, service in workers.items()}
    assert sorted(queue for queues in consumed.values() for queue in queues) == sorted(QUEUES)
    assert all(service["healthcheck"]["test"] for service in workers.values())
    [training] = [name for name, queues in consumed.items() if queues == {"training"}]
    grace = workers[training]["stop_grace_period"]
    assert int(grace.removesuffix("m")) * 60 > settings.CELERY_TASK_TIME_LIMIT  # a run is not cut at the stop
