"""How much of a Synthea population's laboratory results the analyte catalog recognises (no database, no network).

    .venv/bin/python bench/synthea_coverage.py /tmp/syn1000/fhir [--top 60]

Reads every FHIR R4 bundle (`*.json`) of a folder and counts the numeric laboratory results: Observations and their
components with the category "laboratory" and a valueQuantity, less questionnaire scores and counts (units
{score}, {#}, {count}: Synthea files PHQ-2, GAD-7, AUDIT-C and household size under "laboratory", and they are not
lab measurements). A result is recognised when the FHIR import would store it: a LOINC code of the catalog
(`catalog_data.ANALYTES`, looked up as `patients.catalog` does), a unit the analyte accepts (the UCUM code, else the
unit's text, as the importer chooses it), an exact value (no comparator) inside the plausible limits. Prints
recognised / total, then every result not recognised by code, unit and reason, most frequent first.

A folder still being written is fine: a file that is not yet valid JSON is counted and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patients.catalog import Catalog, catalog_of  # noqa: E402
from patients.catalog_data import ANALYTES  # noqa: E402
from patients.clinical import InvalidValue, accepted_units, check_plausible, unit_of  # noqa: E402

LOINC = "http://loinc.org"
NOT_MEASUREMENTS = {"{score}", "{#}", "{count}"}
UNKNOWN, UNIT, IMPLAUSIBLE, INEXACT = "unknown code", "unit not accepted", "implausible value", "not an exact value"


def _is_laboratory(resource: dict) -> bool:
    return any(c.get("code") == "laboratory" for cat in resource.get("category", []) for c in cat.get("coding", []))


def _unit(quantity: dict) -> str:
    return quantity.get("code") or quantity.get("unit") or ""


def lab_results(bundle: dict):
    """(coding list, valueQuantity) of every numeric laboratory result of a bundle, components included."""
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") != "Observation" or not _is_laboratory(resource):
            continue
        for part in [resource, *resource.get("component", [])]:
            quantity = part.get("valueQuantity")
            if isinstance(quantity, dict) and _unit(quantity) not in NOT_MEASUREMENTS:
                yield part.get("code", {}).get("coding", []), quantity


def verdict(lookup: Catalog, codings: list[dict], quantity: dict) -> str:
    """The reason the import would not store the result, or "" when it would."""
    loincs = [c.get("code") for c in codings if c.get("system") == LOINC]
    spec = next((lookup.by_loinc[code] for code in loincs if code in lookup.by_loinc), None)
    if spec is None:
        return UNKNOWN
    unit = unit_of(spec, quantity.get("code"), quantity.get("unit"))  # as the importer chooses it
    if unit not in accepted_units(spec):
        return UNIT
    if quantity.get("comparator"):
        return INEXACT
    try:
        check_plausible(spec, quantity.get("value"), unit)
    except InvalidValue:
        return IMPLAUSIBLE
    return ""


def coverage(folder: Path) -> tuple[int, int, Counter, int, int]:
    """(files read, results, misses by (reason, code, unit, display), recognised, unreadable files)."""
    lookup = catalog_of(ANALYTES)
    files = total = recognised = unreadable = 0
    misses: Counter = Counter()
    for path in sorted(folder.glob("*.json")):
        try:
            bundle = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            unreadable += 1
            continue
        files += 1
        for codings, quantity in lab_results(bundle):
            total += 1
            reason = verdict(lookup, codings, quantity)
            if not reason:
                recognised += 1
                continue
            first = codings[0] if codings else {}
            misses[(reason, first.get("code", "?"), _unit(quantity), first.get("display", ""))] += 1
    return files, total, misses, recognised, unreadable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of FHIR R4 bundles (*.json), one per patient")
    parser.add_argument("--top", type=int, default=60, help="how many unrecognised codes to list (default 60)")
    args = parser.parse_args()
    files, total, misses, recognised, unreadable = coverage(args.folder)
    share = recognised / total if total else 0.0
    print(f"{files} bundles ({unreadable} not readable yet), {total} numeric laboratory results")
    print(f"recognised: {recognised} / {total} = {share:.2%}")
    by_reason = Counter()
    for (reason, *_), count in misses.items():
        by_reason[reason] += count
    for reason, count in by_reason.most_common():
        print(f"  {reason}: {count} ({count / total:.2%})")
    print("\nnot recognised, most frequent first:")
    for (reason, code, unit, display), count in misses.most_common(args.top):
        print(f"{count:8d}  {reason:18s}  {code:9s}  {unit:18s}  {display[:70]}")


if __name__ == "__main__":
    main()
