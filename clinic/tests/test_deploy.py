"""The image, its locked dependencies and the stack as docker-compose.yml runs them, checked without a container
runtime.

The shared libraries the installed wheels link against must be in the image: a wheel that imports fine here can fail
in python:3.11-slim (LightGBM needs libgomp.so.1, which the slim image lacks), and the build would not notice.
"""

import os
import platform
import re
import subprocess
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from clinic.testing import ROOT

DOCKERFILE = ROOT / "Dockerfile"
BASE_IMAGE_PACKAGES = ROOT / "docker" / "base-image-packages.txt"
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
# Libraries a wheel asks for that no import of ours needs, each with the reason.
# None today (numba's optional TBB layer went with shap).
OPTIONAL_SONAMES: dict[str, str] = {}


LOCKS = [ROOT / name for name in ("requirements.txt", "requirements-dev.txt", "requirements-bench.txt")]
# What a venv has that pip and uv never lock.
UNLOCKED_TOOLS = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(requirements: Path) -> list[str]:
    """Each requirement of a requirements file as one line (its `\\` continuations joined), comments left out."""
    joined = re.sub(r"\\\n", " ", requirements.read_text())
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pins_of(requirements: Path) -> dict[str, str]:
    """name == version of each pinned requirement of a requirements file (a lock or an .in), names canonical."""
    pins = {}
    for entry in lock_entries(requirements):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)", entry)
        if match:
            pins[canonical(match.group(1))] = match.group(3)
    return pins


def shared_objects(distribution: str) -> list[Path]:
    files = metadata.distribution(distribution).files or []
    paths = [Path(file.locate()) for file in files if re.search(r"\.so(\.|$)", file.name)]
    return [path for path in paths if path.is_file() and _is_elf(path)]


def _is_elf(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) == b"\x7fELF"


def elf_dynamic(path: Path) -> tuple[list[str], list[Path]]:
    """DT_NEEDED of a shared object, and the directories its RPATH / RUNPATH names ($ORIGIN resolved)."""
    needed: list[str] = []
    search: list[Path] = []
    with path.open("rb") as stream:
        for section in ELFFile(stream).iter_sections():
            if not isinstance(section, DynamicSection):
                continue
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(tag.needed)
                elif tag.entry.d_tag in ("DT_RPATH", "DT_RUNPATH"):
                    paths = tag.rpath if tag.entry.d_tag == "DT_RPATH" else tag.runpath
                    for entry in paths.split(":"):
                        resolved = entry.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", str(path.parent))
                        search.append(Path(resolved))
    return needed, search


def interpreter_sonames() -> set[str]:
    """What the interpreter links: in the image Python is built into /usr/local with its libraries kept."""
    needed, _ = elf_dynamic(Path(sys.executable).resolve())
    return {*needed, sysconfig.get_config_var("LDLIBRARY") or ""}


def system_sonames(distributions: list[str]) -> dict[str, set[str]]:
    """Each soname the wheels need from the system, and which wheels need it: a wheel's own copies (auditwheel's
    `<name>.libs/`, or beside it through RPATH $ORIGIN) and the interpreter's are left out."""
    bundled_dirs = [path for path in SITE_PACKAGES.glob("*.libs") if path.is_dir()]
    interpreter = interpreter_sonames()
    wanted: dict[str, set[str]] = {}
    for distribution in distributions:
        for path in shared_objects(distribution):
            needed, search = elf_dynamic(path)
            for soname in needed:
                if soname in interpreter or soname.startswith("libpython"):
                    continue
                if any((directory / soname).exists() for directory in [*search, *bundled_dirs]):
                    continue
                wanted.setdefault(soname, set()).add(distribution)
    return wanted


def debian_package_of(sonames: list[str]) -> dict[str, str]:
    """The Debian package that provides each soname on this machine, for its own architecture (`dpkg -S`)."""
    multiarch = f"{platform.machine()}-linux-gnu"
    libdirs = {f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
    found = subprocess.run(  # noqa: S603  (dpkg, with patterns of our own)
        ["dpkg", "-S", *(f"*/{soname}" for soname in sonames)],  # noqa: S607
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    packages: dict[str, str] = {}
    for line in found.splitlines():
        owners, _, path = line.partition(": ")
        if str(Path(path).parent) in libdirs and Path(path).name in sonames:
            packages.setdefault(Path(path).name, owners.split(",")[0].split(":")[0].strip())
    return packages


def dockerfile_apt_packages(text: str) -> set[str]:
    """Package names of every `apt-get install` in a Dockerfile (options and shell operators left out)."""
    joined = re.sub(r"\\\n", " ", text)
    packages: set[str] = set()
    for match in re.finditer(r"apt-get\s+install\s+([^;&|\n]*)", joined):
        packages |= {word for word in match.group(1).split() if not word.startswith("-")}
    return packages


def base_image_packages() -> set[str]:
    lines = BASE_IMAGE_PACKAGES.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def missing_packages(dockerfile: str, wanted: dict[str, set[str]], providers: dict[str, str]) -> dict[str, str]:
    """Each system library the wheels need that neither the base image nor the Dockerfile installs, with why."""
    needed = sorted(soname for soname in wanted if soname not in OPTIONAL_SONAMES)
    in_image = base_image_packages() | dockerfile_apt_packages(dockerfile)
    missing = {}
    for soname in needed:
        package = providers.get(soname)
        if package is None:
            missing[soname] = f"needed by {sorted(wanted[soname])}; no Debian package on this machine provides it"
        elif package not in in_image:
            missing[soname] = f"needed by {sorted(wanted[soname])}; add Debian package {package} to the Dockerfile"
    return missing


def os_release_codename() -> str:
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    return fields.get("VERSION_CODENAME", "").strip('"')


@pytest.fixture(scope="module")
def runtime_sonames() -> dict[str, set[str]]:
    names = sorted(pins_of(ROOT / "requirements.txt"))
    not_installed = [name for name in names if not _installed(name)]
    assert not not_installed, f"runtime lock pins packages this venv lacks (make .venv/.installed): {not_installed}"
    return system_sonames(names)


@pytest.fixture(scope="module")
def providers(runtime_sonames) -> dict[str, str]:
    return debian_package_of(sorted(runtime_sonames))


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_the_image_has_every_system_library_the_runtime_wheels_link_against(runtime_sonames, providers):
    assert "libgomp.so.1" in runtime_sonames  # LightGBM's: the scan reads what the wheels really link

    assert missing_packages(DOCKERFILE.read_text(), runtime_sonames, providers) == {}


def test_a_dockerfile_without_libgomp1_is_caught(runtime_sonames, providers):
    without = re.sub(r"\blibgomp1\b", "", DOCKERFILE.read_text())

    missing = missing_packages(without, runtime_sonames, providers)

    assert "libgomp.so.1" in missing
    assert "libgomp1" in missing["libgomp.so.1"]
    assert "lightgbm" in missing["libgomp.so.1"]


def test_the_base_image_is_the_debian_release_and_python_the_checks_read():
    """The check maps sonames with this machine's dpkg and reads this venv's wheels: both must be the image's."""
    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    codename = os_release_codename()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"

    assert codename == "bookworm"
    assert re.fullmatch(rf"python:{re.escape(python)}(\.\d+)?-slim-{codename}(@sha256:[0-9a-f]{{64}})?", base), base
    assert f"python:{python}-slim-{codename}" in BASE_IMAGE_PACKAGES.read_text().splitlines()[0]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_every_requirement_of_a_lock_is_pinned_with_its_hashes(lock):
    entries = lock_entries(lock)

    unhashed = [entry.split()[0] for entry in entries if "==" not in entry or "--hash=sha256:" not in entry]

    assert entries
    assert unhashed == [], f"{lock.name}: pinned without hashes (run `make lock`, never edit the .txt by hand)"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_a_lock_holds_the_pins_of_its_in_file(lock):
    source = lock.with_suffix(".in")
    wanted = pins_of(source)

    locked = pins_of(lock)

    assert {name: locked.get(name) for name in wanted} == wanted, f"{source.name} changed: run `make lock`"


def test_the_locks_cover_every_package_installed_in_the_venv():
    locked: dict[str, str] = {}
    for lock in LOCKS:
        locked |= pins_of(lock)
    installed = {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}

    unlocked = {
        name: version
        for name, version in installed.items()
        if name not in UNLOCKED_TOOLS and locked.get(name) != version
    }

    assert unlocked == {}, "installed but not locked at that version: add to requirements*.in, run `make lock`"


COMPOSE = ROOT / "docker-compose.yml"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN|DSN", re.IGNORECASE)
REQUIRED_VARIABLE = re.compile(r"\$\{\w+:\?[^}]*\}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def seconds(duration: str) -> int:
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    hours, minutes, secs = (int(part or 0) for part in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def literal_secrets(compose_text: str, dockerfile_text: str) -> list[str]:
    """Secrets written into the compose file or the Dockerfile instead of read from the environment."""
    found = [
        f"${{{name}{rest}}} may be empty or defaulted"
        for name, rest in re.findall(r"\$\{(\w+)([^}]*)\}", compose_text)
        if SECRET_NAME.search(name) and not rest.startswith(":?")
    ]
    document = yaml.safe_load(compose_text)
    blocks = [*document.get("services", {}).values(), *(v for k, v in document.items() if k.startswith("x-"))]
    for block in blocks:
        environment = block.get("environment", block) if isinstance(block, dict) else {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for key, value in environment.items():
            if SECRET_NAME.search(str(key)) and not REQUIRED_VARIABLE.fullmatch(str(value)):
                found.append(f"{key}: {value}")
    found += [
        f"password in {match.group(0)}"
        for match in re.finditer(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@\s]+)@", compose_text)
        if not REQUIRED_VARIABLE.fullmatch(match.group(1))
    ]
    for name, value in re.findall(r"\b(\w*(?:PASSWORD|SECRET|_KEY|TOKEN|DSN)\w*)[=\s]+(\S+)", dockerfile_text):
        if not value.startswith(('"$(', "$(")):  # made at build time, for that step only
            found.append(f"Dockerfile {name}={value}")
    return found


def test_no_secret_is_written_in_the_compose_file_or_the_dockerfile():
    assert literal_secrets(COMPOSE.read_text(), DOCKERFILE.read_text()) == []


def test_a_written_password_or_a_defaulted_secret_is_caught():
    written = COMPOSE.read_text().replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", "hunter2")
    defaulted = COMPOSE.read_text().replace("${CLINIC_APP_PASSWORD:?", "${CLINIC_APP_PASSWORD:-", 1)
    baked = DOCKERFILE.read_text() + "\nENV SECRET_KEY=abc\n"

    assert literal_secrets(written, DOCKERFILE.read_text()) == ["POSTGRES_PASSWORD: hunter2"]
    assert len(literal_secrets(defaulted, DOCKERFILE.read_text())) == 2  # the variable, and the URL holding it
    assert literal_secrets(COMPOSE.read_text(), baked) == ["Dockerfile SECRET_KEY=abc"]


def test_the_image_builds_without_a_dot_env():
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert ".env" in ignored
    assert ".env" not in DOCKERFILE.read_text().replace(".env is in .dockerignore", "")


def test_the_dockerfile_collectstatic_step_runs_with_no_secret_given(tmp_path):
    """Production settings refuse to load without keys: the build step makes throwaway ones of its own."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    step = re.search(r"^RUN (.*collectstatic --noinput)", joined, re.MULTILINE).group(1)
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "VAR_DIR": str(tmp_path)}

    done = subprocess.run(  # noqa: S603  (the Dockerfile's own step, on our interpreter)
        ["/bin/sh", "-c", f"{step} --dry-run"], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "static files copied" in done.stdout


def test_only_the_migrate_service_migrates_and_the_application_waits_for_it():
    services = compose()["services"]
    application = {
        name: service for name, service in services.items() if service.get("image") == "clinic-platform:latest"
    }

    def migrates(command) -> bool:
        return bool(re.search(r"manage\.py\s+migrate\b", command if isinstance(command, str) else " ".join(command)))

    assert [name for name, service in application.items() if migrates(service.get("command", ""))] == ["migrate"]
    assert not migrates(re.search(r"^CMD (.*)", DOCKERFILE.read_text(), re.MULTILINE).group(1))
    waiting = {
        name: service["depends_on"]["migrate"]["condition"]
        for name, service in application.items()
        if name != "migrate"
    }
    workers = [name for name in application if name.startswith("worker-")]
    assert workers  # one worker service per kind of work (clinic/tests/test_routing.py checks which)
    assert waiting == dict.fromkeys(["web", *workers, "beat", "hl7"], "service_completed_successfully")


def test_the_web_healthcheck_is_answered_when_allowed_hosts_is_the_real_host_name(client, db, settings):
    probe = " ".join(compose()["services"]["web"]["healthcheck"]["test"])
    url = urlsplit(re.search(r"https?://[^'\"\s]+", probe).group(0))
    settings.ALLOWED_HOSTS, settings.SECURE_SSL_REDIRECT = ["clinic.example.org"], True

    response = client.get(url.path, HTTP_HOST=url.netloc)

    assert url.hostname == "127.0.0.1"
    assert response.status_code == 200
    assert response.json()["database"]["status"] == "ok"
    assert "workers" not in response.json()["workers"]  # the public report: no host names of the deployment


def test_any_other_page_still_refuses_a_host_that_is_not_allowed(client, db, settings):
    settings.ALLOWED_HOSTS = ["clinic.example.org"]

    assert client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/healthz", HTTP_HOST="clinic.example.org").status_code == 200


def test_beat_touches_its_heartbeat_each_tick_and_its_healthcheck_reads_the_age(tmp_path, settings, monkeypatch):
    from django_celery_beat.schedulers import DatabaseScheduler

    from clinic.beat import HeartbeatScheduler

    probe = compose()["services"]["beat"]["healthcheck"]["test"]
    var_dir = re.search(r"VAR_DIR=(\S+)", DOCKERFILE.read_text()).group(1)
    heartbeat = tmp_path / "beat-heartbeat"
    settings.BEAT_HEARTBEAT_PATH = heartbeat
    monkeypatch.setattr(DatabaseScheduler, "tick", lambda self, *args, **kwargs: 5.0)
    code = probe[-1].replace(f"{var_dir}/beat-heartbeat", str(heartbeat))

    def healthy() -> bool:
        return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0  # noqa: S603

    assert settings.CELERY_BEAT_SCHEDULER == "clinic.beat:HeartbeatScheduler"
    assert f"{var_dir}/beat-heartbeat" in probe[-1]  # the file settings name: VAR_DIR / "beat-heartbeat"
    assert not healthy()  # never ticked
    assert object.__new__(HeartbeatScheduler).tick() == 5.0
    assert healthy()
    stale = time.time() - 120
    os.utime(heartbeat, (stale, stale))
    assert not healthy()


def test_stopping_lets_running_work_finish_before_compose_kills_it(settings):
    services = compose()["services"]
    web_command = services["web"]["command"]
    graceful = int(web_command[web_command.index("--graceful-timeout") + 1])

    # The queues whose tasks may run to the hard limit (training runs, batch chunks, imports) get longer than it.
    for name in ("worker-training", "worker-batch"):
        assert seconds(services[name]["stop_grace_period"]) > settings.CELERY_TASK_TIME_LIMIT
    assert seconds(services["web"]["stop_grace_period"]) > graceful
    assert f'"--graceful-timeout", "{graceful}"' in DOCKERFILE.read_text()
