"""Web and worker as separate hosts that share nothing but PostgreSQL and Redis (README, "Design notes: shared
storage").

The test makes three network namespaces, `web1`, `web2` and `worker`, each joined to this (root) namespace by a
veth pair of its own and nothing else: they cannot reach each other, nor this namespace's 127.0.0.1 where
PostgreSQL and the test's own Redis listen. A small TCP forwarder here relays each namespace's gateway address to
those two servers, so the hosts' only shared things are the database and the broker. Each host has its own empty
VAR_DIR and MODEL_DIR. `web1` and `web2` run the Django server, `worker` a real Celery worker. Then:
- `train_model` on `web1` queues a run that the worker host trains; "Score now" on `web2` scores with that model;
- a CSV uploaded and previewed on `web1` is confirmed on `web2`, the way a load balancer may send the two requests;
- a background import uploaded to `web2` is run by the worker host;
and no host kept a model, a plot or an upload on its disk.

Needs root (`ip netns`), PostgreSQL and `redis-server`; with CI=true it fails when any is missing.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from clinic.models import Blob, BlobKind, Role
from clinic.testing import ROOT, RedisServer, wait_for
from clinic.tests.factories import UserFactory
from conftest import scorable
from mltraining.models import ModelStatus, ModelVersion
from patients.demo import demo_cohort_load
from patients.models import ImportJob, ImportJobStatus, Observation, Patient
from predictions.models import Prediction, PredictionStatus

CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "separate-hosts-Pa55"  # noqa: S105  (a test account's)


def _missing() -> str:
    """Why the test cannot run here, or ""."""
    if connection.vendor != "postgresql":
        return "PostgreSQL is not configured (set DATABASE_URL=postgres://...)"
    if os.geteuid() != 0 or not shutil.which("ip"):
        return "network namespaces need root and iproute2 (`ip netns`)"
    if not shutil.which("redis-server"):
        return "redis-server is not installed"
    probe = f"gprobe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)  # noqa: S603, S607
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)  # noqa: S603, S607
    return ""


@pytest.fixture(autouse=True)
def _require_namespaces():
    reason = _missing()
    if reason:
        if CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)  # noqa: S603, S607


class Forwarder:
    """Relays TCP connections from (address, port) to (target address, port), in a thread of this process."""

    def __init__(self, routes: list[tuple[str, int, str, int]]):
        self.routes = routes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="forwarder", daemon=True)
        self.servers: list[asyncio.Server] = []

    def start(self) -> None:
        self.thread.start()
        for listen, port, target, target_port in self.routes:
            handler = self._handler(target, target_port)
            server = asyncio.run_coroutine_threadsafe(asyncio.start_server(handler, listen, port), self.loop)
            self.servers.append(server.result(timeout=10))

    def stop(self) -> None:
        for server in self.servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    @staticmethod
    def _handler(target: str, port: int):
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(target, port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        return handle


@dataclass
class Host:
    name: str  # the namespace's
    address: str  # its own, on its veth
    gateway: str  # this namespace's end of its veth: where the forwarder listens for it
    var_dir: Path

    def environment(self, *, database: str, redis_port: int) -> dict[str, str]:
        db = connection.settings_dict
        return {
            "PATH": os.environ["PATH"], "HOME": str(self.var_dir), "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "clinic.settings",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{self.gateway}:5432/{database}",
            "REDIS_URL": f"redis://{self.gateway}:{redis_port}/0",
            "VAR_DIR": str(self.var_dir), "MODEL_DIR": str(self.var_dir / "models"),
            # What every host of one installation shares through its environment, never through a disk.
            "SECRET_KEY": settings.SECRET_KEY, "AUDIT_HMAC_KEY": settings.AUDIT_HMAC_KEY,
            "ALLOWED_HOSTS": self.address, "OMP_NUM_THREADS": "1",
        }  # fmt: skip

    def run(self, args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            ["ip", "netns", "exec", self.name, sys.executable, *args],  # noqa: S607
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
        )  # fmt: skip

    def serve(self, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        """A long-lived process (a server, a worker), its output into a file beside the host's VAR_DIR: a pipe
        nobody reads would fill with its log lines and stall it."""
        log = self.var_dir.parent / f"{self.var_dir.name}-{uuid.uuid4().hex[:6]}.log"
        with log.open("w") as out:
            process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                ["ip", "netns", "exec", self.name, sys.executable, *args],  # noqa: S607
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        process.log = log
        return process

    def files(self) -> list[str]:
        """What this host keeps on its disk, its development keys aside (there are none: they come from the
        environment)."""
        return sorted(str(p.relative_to(self.var_dir)) for p in self.var_dir.rglob("*") if p.is_file())


@pytest.fixture
def network(tmp_path):
    """Three hosts (namespaces) and a Redis of the test's own, all reached only through the forwarder."""
    tag = uuid.uuid4().hex[:6]
    subnet = random.randint(100, 250)  # noqa: S311  (not a secret: keeps parallel runs apart)
    redis = RedisServer(tmp_path, persistent=False)
    redis.start()
    hosts: dict[str, Host] = {}
    routes = []
    try:
        for number, name in enumerate(["web1", "web2", "worker"], start=1):
            namespace, outside, inside = f"g{tag}-{name}", f"v{tag}{number}a", f"v{tag}{number}b"
            host = Host(namespace, f"10.{subnet}.{number}.2", f"10.{subnet}.{number}.1", tmp_path / name)
            host.var_dir.mkdir()
            hosts[name] = host
            _ip("netns", "add", namespace)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("addr", "add", f"{host.gateway}/24", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", namespace, "addr", "add", f"{host.address}/24", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            port = connection.settings_dict["PORT"] or 5432
            routes += [(host.gateway, 5432, connection.settings_dict["HOST"] or "127.0.0.1", int(port)),
                       (host.gateway, redis.port, "127.0.0.1", redis.port)]  # fmt: skip
        forwarder = Forwarder(routes)
        forwarder.start()
        yield hosts, redis.port
        forwarder.stop()
    finally:
        for number, host in enumerate(hosts.values(), start=1):
            subprocess.run(["ip", "link", "del", f"v{tag}{number}a"], capture_output=True, check=False)  # noqa: S603, S607
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, check=False)  # noqa: S603, S607
        redis.stop()


def _worker_queues() -> str:
    """Every queue the project routes tasks to, so the worker host takes whatever the web hosts send."""
    from clinic.celery import app

    queues = {app.conf.task_default_queue}
    queues |= {queue.name for queue in app.conf.task_queues or []}
    routes = app.conf.task_routes
    for route in routes.values() if isinstance(routes, dict) else []:
        queues.add(route["queue"] if isinstance(route, dict) else str(route))
    return ",".join(sorted(queues))


class Browser:
    """A signed-in user's requests to the web hosts; the cookies go with them from host to host, as they would
    behind one load balancer."""

    def __init__(self):
        import requests

        self.session = requests.Session()
        # A new connection a request: a server may close a kept-alive one just as the next POST goes out on it.
        self.session.headers["Connection"] = "close"

    def login(self, host: Host, username: str) -> None:
        self.get(host, "/accounts/login/")
        answer = self.post(host, "/accounts/login/", {"username": username, "password": PASSWORD})
        assert "/accounts/login/" not in answer.url, answer.text[:2000]

    def get(self, host: Host, path: str):
        answer = self.session.get(f"http://{host.address}:8000{path}", timeout=60)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:2000])
        self._any_host()
        return answer

    def _any_host(self) -> None:
        """Send the cookies a host set to every host, as a browser does to the one name behind a load balancer."""
        cookies = {cookie.name: cookie.value for cookie in self.session.cookies}
        self.session.cookies.clear()
        for name, value in cookies.items():
            self.session.cookies.set(name, value)

    def post(self, host: Host, path: str, data: dict, files: dict | None = None):
        token = self.session.cookies.get("csrftoken")
        answer = self.session.post(
            f"http://{host.address}:8000{path}", data={**data, "csrfmiddlewaretoken": token}, files=files,
            headers={"Referer": f"http://{host.address}:8000{path}"}, timeout=120,
        )  # fmt: skip
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:2000])
        self._any_host()
        return answer


def _serve(host: Host, env: dict[str, str]) -> subprocess.Popen:
    # gunicorn, as a web host runs in production (Django's development server dropped a POST now and then).
    return host.serve(
        ["-m", "gunicorn", "clinic.wsgi:application", "--bind", f"{host.address}:8000", "--workers", "2"], env
    )


def _wait_until_serving(host: Host, server: subprocess.Popen) -> None:
    def answers() -> bool:
        import requests

        try:
            return requests.get(f"http://{host.address}:8000/accounts/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return server.poll() is not None  # stop waiting for a server that died; the test says why

    assert wait_for(answers, seconds=120)
    assert server.poll() is None, server.log.read_text()[-3000:]


def _stop(process: subprocess.Popen) -> str:
    """Stop a process `Host.serve` started; the end of its output."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return f"{process.log.read_text()[-3000:]}\n(exit status {process.returncode})"


LABS = (
    "MRN,Code,Value,Unit,Time\n"
    "{mrn},1558-6,126,mg/dl,{day}T08:30:00+00:00\n"
    "{mrn},2823-3,4.1,mmol/L,{day}T08:30:00+00:00\n"
)


@pytest.mark.django_db(transaction=True)
def test_hosts_that_share_only_the_database_and_the_broker_train_score_and_import_across_each_other(
    network, demo_clinic_a
):
    hosts, redis_port = network
    database = connection.settings_dict["NAME"]
    demo_cohort_load(clinic=demo_clinic_a, n_patients=300, seed=5)
    doctor = UserFactory(username="hosts-doctor", clinic=demo_clinic_a, role=Role.DOCTOR, password=PASSWORD)
    staff = UserFactory(username="hosts-staff", clinic=demo_clinic_a, role=Role.STAFF, password=PASSWORD)
    env = {name: host.environment(database=database, redis_port=redis_port) for name, host in hosts.items()}
    worker = hosts["worker"].serve(
        ["-m", "celery", "-A", "clinic", "worker", "-Q", _worker_queues(), "-P", "solo", "--without-gossip",
         "--without-mingle", "--loglevel", "INFO", "-n", f"hosts-{uuid.uuid4().hex[:4]}@%h"],
        env["worker"],
    )  # fmt: skip
    servers = []
    started = time.monotonic()
    try:
        servers = [_serve(hosts["web1"], env["web1"]), _serve(hosts["web2"], env["web2"])]
        for name, server in zip(["web1", "web2"], servers, strict=True):
            _wait_until_serving(hosts[name], server)
        print(f"hosts serving after {time.monotonic() - started:.0f} s")  # noqa: T201

        # Train: queued on web1 (the command, as an admin would run it there), trained by the worker host.
        started = time.monotonic()
        command = hosts["web1"].run(
            ["manage.py", "train_model", "--clinic", demo_clinic_a.slug, "--candidates", "dummy,logistic_regression",
             "--folds", "2"],
            env["web1"],
        )  # fmt: skip
        output = command.communicate(timeout=600)[0]
        assert command.returncode == 0, output[-3000:]
        version = ModelVersion.objects.get(clinic=demo_clinic_a)
        assert version.status == ModelStatus.ACTIVE
        assert version.artifact.sha256 == version.sha256
        print(f"trained on the worker host in {time.monotonic() - started:.0f} s")  # noqa: T201

        # Score now on web2, which never saw the model being trained.
        patient = scorable(Patient.objects.filter(clinic=demo_clinic_a).order_by("pk"))
        doctor_browser = Browser()
        doctor_browser.login(hosts["web2"], doctor.username)
        doctor_browser.get(hosts["web2"], reverse("patients:detail", args=[patient.pk]))
        page = doctor_browser.post(hosts["web2"], reverse("predictions:score", args=[patient.pk]), {}).text
        assert f"Scored with model v{version.version}" in page
        prediction = Prediction.objects.filter(patient=patient).latest("pk")
        assert (prediction.status, prediction.model_version_id) == (PredictionStatus.SUCCEEDED, version.pk)

        # A CSV previewed on web1 and confirmed on web2.
        staff_browser = Browser()
        staff_browser.login(hosts["web1"], staff.username)
        upload = reverse("imports:upload")
        staff_browser.get(hosts["web1"], upload)
        csv = LABS.format(mrn=patient.mrn, day=time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400)))
        preview = staff_browser.post(hosts["web1"], upload, {"format": "auto", "mrn": ""},
                                     files={"file": ("labs.csv", csv.encode(), "text/csv")})  # fmt: skip
        token = re.search(r"/patients/import/([0-9a-f]{32})/", preview.url).group(1)
        assert 'data-testid="to-create">2<' in preview.text, preview.text[:2000]
        before = Observation.objects.filter(patient=patient).count()
        result = staff_browser.post(hosts["web2"], reverse("imports:confirm", args=[token]), {})
        assert result.url.endswith(reverse("imports:result", args=[token])), result.text[:2000]
        assert Observation.objects.filter(patient=patient).count() == before + 2

        # A background import sent to web2: its file stored there, imported by the worker host.
        later = LABS.format(mrn=patient.mrn, day=time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * 86400)))
        staff_browser.get(hosts["web2"], reverse("imports:job_new"))
        staff_browser.post(hosts["web2"], reverse("imports:job_new"), {"kind": "auto", "format": "auto", "mrn": ""},
                           files={"files": ("later.csv", later.encode(), "text/csv")})  # fmt: skip
        job = ImportJob.objects.get(clinic=demo_clinic_a)
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).status in ("succeeded", "failed"), seconds=180)
        job.refresh_from_db()
        assert job.status == ImportJobStatus.SUCCEEDED, job.error
        assert Observation.objects.filter(patient=patient).count() == before + 4
        assert not Blob.objects.filter(kind=BlobKind.JOB_FILE).exists()  # removed once the job ended
    finally:
        logs = {"web1": "", "web2": ""}
        for name, server in zip(["web1", "web2"], servers, strict=False):
            logs[name] = _stop(server)
        worker_log = _stop(worker)
        print(worker_log[-1500:], logs["web1"][-800:], logs["web2"][-800:], sep="\n")  # noqa: T201
    # Nothing of the model or the upload was kept on any host's disk: only the database has them.
    for host in hosts.values():
        assert not [f for f in host.files() if f.endswith((".skops", ".png", ".csv"))], (host.name, host.files())
    assert not list((hosts["worker"].var_dir / "imports").iterdir())  # the job's local copy is gone too
