"""Many FHIR files as one import: FHIR Bulk Data NDJSON (one file per resource type, as `$export` writes them)
and folders of per-patient bundles (as Synthea writes them). Run by an import job's worker and by `import_fhir`.

Each file goes through `fhir_import`, which checks, writes and audits; this module decides the order, cuts
NDJSON into chunks and carries patients from one file to the next:

- Memory stays bounded: an NDJSON file is read `CHUNK_RESOURCES` lines at a time, each chunk one `fhir_import`
  (one transaction); a bundle is one JSON document, so one import, within the reader's 50 MB limit.
- An export's Observations refer to patients of its Patient file (`Patient/<id>`). Files whose first resource
  is a Patient are imported first; each patient read there is remembered by reference (id, MRN, name, birth
  date: a few hundred bytes each), and a later chunk that refers to it gets that Patient appended, so the
  import matches it by MRN to the row just stored. Those appended patients are left out of the summary.
- The flags mean what they mean for one file (`fhir_import`): clinically wrong content refuses the file unless
  `skip_bad`, an unreadable resource is skipped and listed unless `strict`. A chunked file is read through before
  its first chunk is written, so what refuses it writes nothing of it: each chunk parsed and its resources read
  (`collect`, no database), a Patient file's chunks (and with `strict` every chunk) imported in a transaction
  that is rolled back. What only the write can find (a result dated before its patient's birth, a database
  error) stops the file half-way, with the count imported; importing it again adds only the rest.
- Line numbers in messages are the file's own: a chunk is preceded by as many empty lines as come before it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from clinic.models import Clinic, User
from patients.fhir.importer import collect
from patients.fhir.reader import MAX_BYTES, Format, guess_format, read_fhir
from patients.fhir.services import MAX_CRITICAL_LISTED, MAX_LISTED, fhir_import

CHUNK_RESOURCES = 2000
MAX_LISTED_PATIENTS = 1000  # MRNs listed in a merged summary; the counts are always complete
_SNIFF_BYTES = 1024 * 1024
_PATIENT_REFERENCE = re.compile(r'"reference"\s*:\s*"(?:[^"]*/)?(Patient/[^"/]+)"')


@dataclass(frozen=True)
class FileResult:
    """One file's outcome, as a job lists it and the command prints it."""

    name: str
    resources: int
    summary: dict[str, Any] | None  # None: refused
    error: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        observations = (self.summary or {}).get("observations", {})
        return {
            "name": self.name,
            "ok": self.summary is not None,
            "resources": self.resources,
            "observations_created": observations.get("created", 0),
            "error": self.error[:MAX_LISTED],
        }


# After each chunk: (file name, "checked" or "imported", resources done, resources in the file: 0 while checking);
# and each file's outcome when it is done.
ChunkProgress = Callable[[str, str, int, int], None]
FileDone = Callable[[int, int, FileResult], None]


class _Refused(Exception):
    def __init__(self, messages: list[str]):
        self.messages = messages


class _RollBack(Exception):
    """Raised inside a trial import to undo it."""


@dataclass
class _Patients:
    """Patients of the files imported so far, by reference, as the minimal resource that matches them again."""

    by_reference: dict[str, tuple[str, str]] = field(default_factory=dict)  # reference -> (MRN, Patient JSON)

    def remember(self, lines: list[str], stored: set[str]) -> None:
        """Remember the chunk's patients that are now stored (MRNs in `stored`); one the import skipped is not:
        appended later, its reduced copy might be stored where the whole resource was not."""
        for resource in _patients_of(lines):
            minimal = _minimal_patient(resource)
            if minimal and minimal[0] in stored and isinstance(resource.get("id"), str):
                self.by_reference[f"Patient/{resource['id']}"] = minimal

    def for_chunk(self, lines: list[str]) -> dict[str, tuple[str, str]]:
        """The remembered patients this chunk refers to but does not hold itself."""
        wanted = {ref for line in lines for ref in _PATIENT_REFERENCE.findall(line)}
        held = {f"Patient/{resource.get('id')}" for resource in _patients_of(lines)}
        return {ref: self.by_reference[ref] for ref in wanted - held if ref in self.by_reference}


def _patients_of(lines: list[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if '"Patient"' in line and line.strip():  # a cheap test first: most lines of an export are not patients
            resource = json.loads(line)
            if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                yield resource


def _minimal_patient(resource: dict[str, Any]) -> tuple[str, str] | None:
    """(MRN, JSON) of the Patient reduced to what the importer matches on; None if it has no identifier."""
    identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, dict) and _text(i.get("value"))]
    typed = [i for i in identifiers if any(c.get("code") == "MR" for c in (i.get("type") or {}).get("coding") or [])]
    chosen = (typed or identifiers)[:1]
    if not chosen:
        return None
    keep = {key: resource[key] for key in ("resourceType", "id", "name", "birthDate", "gender") if key in resource}
    return chosen[0]["value"].strip(), json.dumps({**keep, "identifier": chosen})


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def file_format(path: Path, name: str) -> Format:
    """NDJSON by its suffix, else by its first line: one whole resource that is not a Bundle."""
    if guess_format(name) == "ndjson":
        return "ndjson"
    with path.open("rb") as handle:
        first = handle.readline(_SNIFF_BYTES).strip()
    try:
        document = json.loads(first)
    except (ValueError, RecursionError):  # not one resource: the reader refuses it with the reason
        return "json"
    return "ndjson" if isinstance(document, dict) and document.get("resourceType") not in (None, "Bundle") else "json"


def _first_resource_type(path: Path) -> str:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                match = re.search(rb'"resourceType"\s*:\s*"([A-Za-z]+)"', line[:_SNIFF_BYTES])
                return match.group(1).decode() if match else ""
    return ""


def _chunks(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(lines before the chunk, its lines from the first non-empty one), CHUNK_RESOURCES lines at a time: never the
    whole file in memory."""
    before, lines = 0, []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if len(raw) > MAX_BYTES:
                raise _Refused([f"line {number}: longer than {MAX_BYTES // (1024 * 1024)} MB."])
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise _Refused([f"line {number}: not UTF-8 encoded (invalid byte at position {exc.start})."]) from None
            if not lines and not line.strip():
                before = number
                continue
            lines.append(line)
            if len(lines) >= CHUNK_RESOURCES:
                yield before, lines
                before, lines = number, []
    if lines:
        yield before, lines


def _resources(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip())


def _chunk_bytes(before: int, lines: list[str], extra: list[str] = ()) -> bytes:
    # Empty lines first: the reader numbers lines from 1 and skips empty ones, so its messages name the file's lines.
    return ("\n" * before + "\n".join([*lines, *extra])).encode()


class _Importer:
    def __init__(self, *, clinic: Clinic, by: User | None, username: str, skip_bad: bool, strict: bool):
        self.clinic, self.by, self.username, self.skip_bad, self.strict = clinic, by, username, skip_bad, strict
        self.patients = _Patients()

    def one(self, data: bytes, name: str, fmt: Format) -> dict[str, Any]:
        summary = fhir_import(
            by=self.by, clinic=self.clinic, data=data, name=name, fmt=fmt, skip_bad=self.skip_bad, strict=self.strict,
            username=self.username,
        )  # fmt: skip
        for key in ("problems", "unreadable", "warnings"):  # a job's summary lists them for all its files
            summary[key] = [f"{name}: {line}" for line in summary[key]]
        return summary

    def trial(self, data: bytes, name: str) -> None:
        """Import and roll back: every check the real import makes, nothing kept (its audit row neither)."""
        try:
            with transaction.atomic():
                self.one(data, name, "ndjson")
                raise _RollBack
        except _RollBack:
            pass

    def read(self, data: bytes) -> None:
        """The checks of one chunk that need no database: readable, and (unless skip_bad) clinically plausible."""
        problems = collect(read_fhir(data, fmt="ndjson")).problems
        if problems and not self.skip_bad:
            listed = problems[:MAX_LISTED] + ([f"... and {len(problems) - MAX_LISTED} more."] if
                                              len(problems) > MAX_LISTED else [])  # fmt: skip
            raise ValidationError([f"Nothing was imported: {len(problems)} resource(s) cannot be stored. Correct the "
                                   "file, or import with skip_bad to store the rest.", *listed])  # fmt: skip

    def check(self, path: Path, name: str, *, patients: bool, on_chunk: ChunkProgress | None) -> int:
        """Read the NDJSON file through before anything of it is written; return its resources."""
        resources = 0
        for before, lines in _chunks(path):
            try:
                if patients or self.strict:
                    self.trial(_chunk_bytes(before, lines, [j for _, j in self.patients.for_chunk(lines).values()]),
                               name)  # fmt: skip
                else:
                    self.read(_chunk_bytes(before, lines))
            except ValidationError as exc:
                raise _Refused(exc.messages) from None
            resources += _resources(lines)
            if on_chunk:
                on_chunk(name, "checked", resources, 0)
        return resources

    def ndjson(self, path: Path, name: str, on_chunk: ChunkProgress | None) -> tuple[int, dict[str, Any]]:
        patients = _first_resource_type(path) == "Patient"
        total = self.check(path, name, patients=patients, on_chunk=on_chunk)
        done, merged = 0, None
        for before, lines in _chunks(path):
            carried = self.patients.for_chunk(lines)
            try:
                summary = self.one(_chunk_bytes(before, lines, [j for _, j in carried.values()]), name, "ndjson")
            except ValidationError as exc:
                at = f"after {done} resources were imported (importing the file again adds only the rest)"
                raise _Refused([f"{message} ({at})" if done else message for message in exc.messages]) from None
            _leave_out(summary, {mrn for mrn, _ in carried.values()})
            self.patients.remember(lines, {*summary["patients"]["created"], *summary["patients"]["matched"]})
            merged = summaries_merge(merged, summary)
            done += _resources(lines)
            if on_chunk:
                on_chunk(name, "imported", done, total)
        return total, merged or {}

    def bundle(self, path: Path, name: str) -> tuple[int, dict[str, Any]]:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        try:
            summary = self.one(data, name, "json")
        except ValidationError as exc:
            raise _Refused(exc.messages) from None
        return summary["resources"], summary


def _leave_out(summary: dict[str, Any], carried: set[str]) -> None:
    """Patients appended from an earlier file are not this file's: out of its counts."""
    if carried:
        matched = summary["patients"]["matched"]
        summary["patients"]["matched"] = [mrn for mrn in matched if mrn not in carried]
        summary["resources"] -= len(carried)


def fhir_files_import(
    *,
    clinic: Clinic,
    files: list[tuple[str, Path]],
    by: User | None = None,
    username: str = "",
    skip_bad: bool = False,
    strict: bool = False,
    on_chunk: ChunkProgress | None = None,
    on_file: FileDone | None = None,
) -> tuple[dict[str, Any], list[FileResult]]:
    """Import the files (name, path) as one export; return the merged summary and each file's outcome.

    A refused file writes nothing and does not stop the others. Patient files go first, then the rest in the
    order given. `by` None is a command (pass `username`).
    """
    importer = _Importer(clinic=clinic, by=by, username=username, skip_bad=skip_bad, strict=strict)
    formats = [file_format(path, name) for name, path in files]
    first_patients = [fmt == "ndjson" and _first_resource_type(path) == "Patient" for fmt, (_, path) in
                      zip(formats, files, strict=True)]  # fmt: skip
    order = sorted(range(len(files)), key=lambda index: (not first_patients[index], index))
    merged, results = None, []
    for position, index in enumerate(order, start=1):
        name, path = files[index]
        try:
            if formats[index] == "ndjson":
                resources, summary = importer.ndjson(path, name, on_chunk)
            else:
                resources, summary = importer.bundle(path, name)
            result = FileResult(name, resources, summary)
            merged = summaries_merge(merged, summary)
        except _Refused as exc:
            result = FileResult(name, 0, None, exc.messages)
        except OSError as exc:
            result = FileResult(name, 0, None, [f"The file cannot be read: {exc.strerror or exc}."])
        results.append(result)
        if on_file:
            on_file(position, len(files), result)
    return merged or {}, results


# --- merging summaries -------------------------------------------------------------------------------------------


def _coded_merge(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: Counter = Counter()
    for rows in lists:
        for row in rows:
            counts[(row["system"], row["code"], row["display"])] += row["count"]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"system": s, "code": c, "display": d, "count": n} for (s, c, d), n in ordered]


def _counts_merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return dict(sorted((Counter(a) + Counter(b)).items()))


def summaries_merge(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """Two `fhir_import` summaries as one, of the same shape (lists capped; `*_count` fields stay complete)."""
    if total is None:
        total = json.loads(json.dumps(part))  # a copy, with every count field present
        for key in ("created", "matched"):
            total["patients"][f"{key}_count"] = len(part["patients"][key])
            total["patients"][key] = part["patients"][key][:MAX_LISTED_PATIENTS]
        return total
    for key in ("created", "matched"):
        total["patients"][f"{key}_count"] += len(part["patients"][key])
        total["patients"][key] = (total["patients"][key] + part["patients"][key])[:MAX_LISTED_PATIENTS]
    if part["format"] not in total["format"].split(", "):
        total["format"] = f"{total['format']}, {part['format']}"
    total["resources"] += part["resources"]
    obs, new = total["observations"], part["observations"]
    for key in ("created", "duplicates", "critical_count"):
        obs[key] += new[key]
    obs["by_analyte"] = _counts_merge(obs["by_analyte"], new["by_analyte"])
    obs["critical"] = (obs["critical"] + new["critical"])[:MAX_CRITICAL_LISTED]
    for key, value in part["conditions"].items():
        total["conditions"][key] = total["conditions"].get(key, 0) + value
    for key in ("skipped_resource_types", "skipped"):
        total[key] = _counts_merge(total[key], part[key])
    for key in ("unknown_codes", "unmapped_conditions"):
        total[key] = _coded_merge(total[key], part[key])
    lab, new_lab = total["laboratory"], part["laboratory"]
    lab["numeric_results"] += new_lab["numeric_results"]
    lab["recognised"] += new_lab["recognised"]
    lab["recognised_share"] = round(lab["recognised"] / lab["numeric_results"], 4) if lab["numeric_results"] else None
    for key in ("problems_skipped", "unreadable_skipped"):
        total[key] += part[key]
    for key in ("problems", "unreadable", "warnings"):
        total[key] = (total[key] + part[key])[:MAX_LISTED]
    if total["file"] != part["file"]:
        total["file"] = ""  # several files
    return total
