"""Bytes in, FHIR resources out: the guards every uploaded file passes before anything looks at its content.

A file is refused with one clear message (a `ValidationError`) when it is too large, not UTF-8, holds a
NUL character, nested deeper than any FHIR resource is, not JSON, or JSON that is neither a Bundle nor NDJSON
of resources.
Only the Bundle envelope is checked here; the resources themselves are checked by `importer`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

from django.core.exceptions import ValidationError

MAX_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 64
BUNDLE_TYPES = {"transaction", "batch", "collection", "searchset"}
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
Format = Literal["json", "ndjson"]

# JSON strings (the unrolled form is linear even for the long base64 notes real generators embed),
# removed before the brackets are counted, so a "[" inside a string does not count as nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# The escape \u0000 (after an even number of backslashes, so not an escaped backslash followed by "u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True)
class Item:
    """One resource of the file and where it came from, for messages ("entry 12", "line 40")."""

    where: str
    resource: dict[str, Any]
    full_url: str = ""


@dataclass
class FhirFile:
    kind: str  # "Bundle (transaction)", "Bundle (collection)", "NDJSON"
    items: list[Item] = field(default_factory=list)
    empty_entries: int = 0  # Bundle entries without a resource (e.g. a transaction's DELETE)


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_fhir")


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise _refuse(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(f"The file is not UTF-8 encoded (invalid byte at position {exc.start}).") from None


def _check_depth(text: str) -> None:
    """Refuse deep nesting before the parser recurses into it (a JSON bomb, never a FHIR resource)."""
    steps = (1 if bracket in "[{" else -1 for bracket in _BRACKET.findall(_STRING.sub("", text)))
    if max(accumulate(steps), default=0) > MAX_DEPTH:
        raise _refuse(f"The JSON is nested deeper than {MAX_DEPTH} levels.")


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not allowed in FHIR JSON")


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise _refuse(f"The JSON is nested deeper than {MAX_DEPTH} levels.") from None


def _json_error(exc: ValueError, prefix: str = "The file is ") -> ValidationError:
    if isinstance(exc, json.JSONDecodeError):
        return _refuse(f"{prefix}not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.")
    return _refuse(f"{prefix}not valid JSON: {exc}.")


def _resource_type(value: Any, where: str) -> str:
    if not isinstance(value, dict):
        raise _refuse(f"{where}: expected a FHIR resource (a JSON object).")
    kind = value.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise _refuse(f"{where}: the resource has no resourceType.")
    return kind


def _bundle(document: Any) -> FhirFile:
    kind = _resource_type(document, "The file")
    if kind != "Bundle":
        raise _refuse(f"Expected a FHIR Bundle or NDJSON of resources, not a single {kind} resource.")
    bundle_type = document.get("type")
    if not isinstance(bundle_type, str) or bundle_type not in BUNDLE_TYPES:
        accepted = ", ".join(sorted(BUNDLE_TYPES))
        raise _refuse(f"Bundle type {bundle_type!r} cannot be imported; accepted: {accepted}.")
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        raise _refuse("Bundle.entry must be a list.")
    result = FhirFile(kind=f"Bundle ({bundle_type})")
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise _refuse(f"entry {number}: expected an object.")
        resource = entry.get("resource")
        if resource is None:
            result.empty_entries += 1
            continue
        kind = _resource_type(resource, f"entry {number}")
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else ""
        result.items.append(Item(_where(f"entry {number}", kind, resource), resource, full_url))
    return result


def _ndjson_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _ndjson(text: str) -> FhirFile:
    result = FhirFile(kind="NDJSON")
    for number, line in _ndjson_lines(text):
        try:
            resource = _loads(line)
        except ValueError as exc:
            raise _json_error(exc, prefix=f"line {number}: ") from None
        kind = _resource_type(resource, f"line {number}")
        result.items.append(Item(_where(f"line {number}", kind, resource), resource))
    if not result.items:
        raise _refuse("The file contains no resources.")
    return result


def _where(position: str, kind: str, resource: dict[str, Any]) -> str:
    resource_id = resource.get("id")
    return f"{position} ({kind}/{resource_id})" if isinstance(resource_id, str) else f"{position} ({kind})"


def guess_format(name: str = "", content_type: str = "") -> Format | None:
    if "ndjson" in content_type or name.lower().endswith(NDJSON_SUFFIXES):
        return "ndjson"
    return None


def read_fhir(data: bytes, *, fmt: Format | None = None) -> FhirFile:
    """Parse a Bundle (JSON) or NDJSON file. Without `fmt`, a file that is one JSON document is a Bundle and
    one that holds several documents, one per line, is NDJSON."""
    text = _decode(data)
    if not text.strip():
        raise _refuse("The file is empty.")
    # No FHIR text holds one, and PostgreSQL cannot store it. The substring test first: the pattern, tried at every
    # position of a 4 MB bundle, costs a tenth of a second.
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise _refuse("The file contains a NUL character (\\u0000) in a string.")
    _check_depth(text)
    if fmt == "ndjson":
        return _ndjson(text)
    try:
        document = _loads(text)
    except json.JSONDecodeError as exc:
        if fmt is None and exc.msg == "Extra data" and exc.lineno > 1:
            return _ndjson(text)
        raise _json_error(exc) from None
    except ValueError as exc:
        raise _json_error(exc) from None
    return _bundle(document)
