"""The analyte catalog at run time: database rows as immutable specs, loaded once per process.

The catalog changes only through data migrations (`catalog_sync`), so a process-wide snapshot is safe;
`catalog_clear()` drops it (tests, and after a migration in the same process).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING

from patients.catalog_data import ANALYTES, SOURCES, AnalyteSpec, RefRange, UnitConversion

if TYPE_CHECKING:
    from patients.models import Analyte


@dataclass(frozen=True)
class Catalog:
    by_code: dict[str, AnalyteSpec]
    ids: dict[str, int]  # analyte code -> database id
    by_loinc: dict[str, AnalyteSpec]
    by_name: dict[str, AnalyteSpec]  # lower-case code, name and aliases

    def get(self, key: str) -> AnalyteSpec | None:
        """Find an analyte by code, LOINC code, name or alias (case-insensitive)."""
        key = key.strip()
        return self.by_code.get(key) or self.by_loinc.get(key) or self.by_name.get(key.lower())

    def specs(self) -> list[AnalyteSpec]:
        return list(self.by_code.values())

    @cached_property
    def by_id(self) -> dict[int, AnalyteSpec]:
        """Analyte database id -> spec: an observation carries the id."""
        return {self.ids[code]: spec for code, spec in self.by_code.items() if code in self.ids}


@cache
def catalog() -> Catalog:
    from patients.models import Analyte

    analytes = Analyte.objects.prefetch_related("loinc_codes", "alternative_units", "reference_ranges")
    specs, ids = {}, {}
    for analyte in analytes:
        specs[analyte.code] = AnalyteSpec(
            code=analyte.code,
            name=analyte.name,
            kind=analyte.kind,
            panel=analyte.panel,
            loinc=tuple(code.code for code in analyte.loinc_codes.all()),
            unit=analyte.unit,
            conversions=tuple(
                UnitConversion(unit=u.unit, factor=u.factor, offset=u.offset) for u in analyte.alternative_units.all()
            ),
            plausible_low=analyte.plausible_low,
            plausible_high=analyte.plausible_high,
            ranges=tuple(
                RefRange(low=r.low, high=r.high, sex=r.sex, age_min=r.age_min, age_max=r.age_max)
                for r in analyte.reference_ranges.all()
            ),
            critical_low=analyte.critical_low,
            critical_high=analyte.critical_high,
            decimals=analyte.decimals,
            source=analyte.source,
            aliases=tuple(analyte.aliases),
        )
        ids[analyte.code] = analyte.pk
    return catalog_of(specs.values(), ids=ids)


def catalog_of(specs: Iterable[AnalyteSpec], *, ids: dict[str, int] | None = None) -> Catalog:
    """The lookups over these specs: `catalog()` builds them from the database, a script without one (bench/) from
    `catalog_data.ANALYTES`, and both find an analyte the same way."""
    by_code = {spec.code: spec for spec in specs}
    by_loinc = {loinc: spec for spec in by_code.values() for loinc in spec.loinc}
    by_name: dict[str, AnalyteSpec] = {}
    for spec in by_code.values():
        for name in (spec.code, spec.name, *spec.aliases):
            by_name.setdefault(name.lower(), spec)
    return Catalog(by_code=by_code, ids=ids or {}, by_loinc=by_loinc, by_name=by_name)


@cache
def analyte_rows() -> dict[int, Analyte]:
    """The analyte rows by id, loaded once per process like `catalog()` and for the same reason: a page that reads
    many observations attaches these to them instead of joining the table on every read. Shared: read, never
    change them."""
    from patients.models import Analyte

    return Analyte.objects.in_bulk()


def catalog_clear() -> None:
    catalog.cache_clear()
    analyte_rows.cache_clear()


def catalog_sync(apps) -> None:
    """Make the catalog tables match `catalog_data.ANALYTES`. Called from data migrations with historical models."""
    Analyte = apps.get_model("patients", "Analyte")
    AnalyteLoinc = apps.get_model("patients", "AnalyteLoinc")
    AnalyteUnit = apps.get_model("patients", "AnalyteUnit")
    ReferenceRange = apps.get_model("patients", "ReferenceRange")
    for order, spec in enumerate(ANALYTES):
        analyte, _ = Analyte.objects.update_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "kind": spec.kind,
                "panel": spec.panel,
                "unit": spec.unit,
                "plausible_low": spec.plausible_low,
                "plausible_high": spec.plausible_high,
                "critical_low": spec.critical_low,
                "critical_high": spec.critical_high,
                "decimals": spec.decimals,
                "source": SOURCES[spec.source],
                "aliases": list(spec.aliases),
                "sort_order": order,
            },
        )
        AnalyteLoinc.objects.filter(analyte=analyte).delete()
        AnalyteLoinc.objects.bulk_create(
            AnalyteLoinc(analyte=analyte, code=code, preferred=index == 0) for index, code in enumerate(spec.loinc)
        )
        AnalyteUnit.objects.filter(analyte=analyte).delete()
        AnalyteUnit.objects.bulk_create(
            AnalyteUnit(analyte=analyte, unit=c.unit, factor=c.factor, offset=c.offset) for c in spec.conversions
        )
        ReferenceRange.objects.filter(analyte=analyte).delete()
        ReferenceRange.objects.bulk_create(
            ReferenceRange(analyte=analyte, sex=r.sex, age_min=r.age_min, age_max=r.age_max, low=r.low, high=r.high)
            for r in spec.ranges
        )
