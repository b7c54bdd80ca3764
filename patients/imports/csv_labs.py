"""Reading a lab or wearable CSV file into a plan: the values it would store, and every problem, row by row.

No database and no HTTP: the caller passes the analyte catalog, the clinic's time zone and the current
time, so the whole reading is testable on its own. Three layouts are understood:

- long: one value per row, columns MRN, analyte (code, LOINC code or name), value, unit, time;
- wide: one row per patient visit, one column per analyte (matched by code, LOINC code, name or alias,
  case-insensitive), units in the header ("Glucose (mg/dL)", "glucose [mg/dL]"), in a "<analyte> unit"
  column, in a "unit" column for the whole row, or else the analyte's canonical unit;
- wearable: a wide file whose analyte columns are all wearable daily values (steps, resting heart rate,
  sleep), with a date column and optionally an MRN column.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
A time without a zone is in the clinic's zone. A date without a time is 00:00 for lab results and vitals,
and 12:00 for wearable daily values, so that the day survives any time zone shift. Only the rows named in
problems are bad; `Plan.values` holds the values of every row, bad rows included, each with its row.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
from dataclasses import dataclass, field
from typing import Protocol

from patients.catalog_data import AnalyteSpec
from patients.clinical import InvalidValue, accepted_units, check_plausible, unit_resolve

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 200_000
MAX_VALUES = 1_000_000  # a wide file within MAX_ROWS can still hold millions of cells
FORMATS = ("auto", "long", "wide")
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
WEARABLE_DAY_TIME = datetime.time(12, 0)
REPORT_HEADER = ("row", "column", "value", "problem")

_ROLES = {
    "mrn": ("mrn", "patient mrn", "medical record number", "mrn number", "patient", "patient id"),
    "time": ("effective at", "datetime", "date time", "collected at", "collection time", "collection date",
             "sample time", "sample date", "observation time", "result date", "timestamp", "time", "date", "day"),
    "analyte": ("analyte", "code", "analyte code", "test", "test code", "test name", "loinc", "loinc code",
                "observation"),
    "value": ("value", "result", "result value", "observation value"),
    "unit": ("unit", "units", "uom", "result unit"),
}  # fmt: skip
# Headers wearable exports use that are neither analyte names nor aliases: (analyte code, unit).
_HEADER_SYNONYMS = {
    "resting hr": ("resting_heart_rate", ""),
    "resting hr bpm": ("resting_heart_rate", "/min"),
    "resting heart rate bpm": ("resting_heart_rate", "/min"),
    "sleep minutes": ("sleep_duration", "min"),
    "sleep min": ("sleep_duration", "min"),
    "sleep mins": ("sleep_duration", "min"),
    "minutes asleep": ("sleep_duration", "min"),
    "sleep h": ("sleep_duration", "h"),
    "hours asleep": ("sleep_duration", "h"),
}
_MISSING = {"", "na", "n/a"}
# "12,500" grouped by thousands, as a spreadsheet writes a count in a comma-separated file (quoted there). Never in a
# file separated by semicolons or tabs, where a comma is the locale's decimal comma ("0,015"), and never with a
# first group of 0: those are refused as decimal commas, not read a thousand times too large.
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?")
_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(:\d{2})?")


class UnreadableFile(ValueError):
    """The file as a whole cannot be imported; the message is written for the person who sent it."""


class AnalyteLookup(Protocol):
    def get(self, key: str) -> AnalyteSpec | None: ...


@dataclass(frozen=True, slots=True)
class Problem:
    row: int | None  # None: the whole file
    column: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlannedValue:
    row: int
    mrn: str
    code: str
    value: float  # in the analyte's canonical unit
    entered_value: float
    entered_unit: str
    effective_at: datetime.datetime


@dataclass
class Plan:
    format: str  # "long", "wide" or "wearable"
    time_column: str
    rows: int = 0  # data rows read, blank ones not counted
    values: list[PlannedValue] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    mrns: dict[int, str] = field(default_factory=dict)  # row -> MRN, for every row that names one
    unknown_columns: list[str] = field(default_factory=list)
    unknown_codes: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # wide: header -> analyte code


def plan_read(
    data: bytes,
    *,
    lookup: AnalyteLookup,
    tz: datetime.tzinfo,
    now: datetime.datetime,
    fmt: str = "auto",
    mrn: str = "",
) -> Plan:
    """Read the whole file; `mrn` names the patient of a file without an MRN column. Raises UnreadableFile."""
    if fmt not in FORMATS:
        raise UnreadableFile(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    text = text_decode(data)
    delimiter = delimiter_of(text.lstrip("\r\n").split("\n", 1)[0])
    header, body = _records(text, delimiter)
    roles = _roles(header)
    if not mrn.strip() and "mrn" not in roles:
        raise UnreadableFile(
            "The file has no MRN column. For a file about one patient, give that patient's MRN; "
            "otherwise add a column named MRN."
        )
    if "time" not in roles:
        raise UnreadableFile("The file has no date or time column (for example date, time or effective_at).")
    reader = _Reader(header, roles, lookup=lookup, tz=tz, now=now, default_mrn=mrn.strip(),
                     thousands=delimiter == ",")  # fmt: skip
    is_long = "analyte" in roles and "value" in roles
    if fmt == "long" and not is_long:
        raise UnreadableFile("A long file needs an analyte (or code, or LOINC) column and a value column.")
    plan = reader.read_long(body) if is_long and fmt != "wide" else reader.read_wide(body)
    if len(plan.values) > MAX_VALUES:
        raise UnreadableFile(f"The file holds more than {MAX_VALUES:,} values; split it into smaller files.")
    plan.problems.sort(key=lambda problem: problem.row or 0)
    return plan


def text_decode(data: bytes) -> str:
    """The file as text, or a clear refusal: empty, too large, binary or not UTF-8."""
    if not data.strip():
        raise UnreadableFile("The file is empty.")
    if len(data) > MAX_BYTES:
        raise UnreadableFile(size_message(len(data)))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile("The file is UTF-16 text, not UTF-8. Save it as 'CSV UTF-8' and try again.")
    if b"\x00" in data:
        raise UnreadableFile("The file contains binary data; it is not a CSV text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"The file is not UTF-8 text (undecodable byte at position {exc.start}). "
            "Save it as 'CSV UTF-8' and try again."
        ) from None


def size_message(size: int) -> str:
    return f"The file is {size / 1024 / 1024:.1f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB. Split it."


def report_rows(problems: list[Problem]) -> list[tuple[int | str, str, str, str]]:
    """Rows of the downloadable report, under REPORT_HEADER; writers apply `csv_safe` to every cell."""
    return [("" if p.row is None else p.row, p.column, p.value, p.reason) for p in problems]


def delimiter_of(header_line: str) -> str:
    """The separator a header row uses: a comma, else a semicolon (a decimal-comma locale's CSV), else a tab."""
    return next((d for d in (",", ";", "\t") if d in header_line), ",")


def _records(text: str, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the numbered data rows. Refuses malformed CSV and files over the row limit."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    body: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for number, record in enumerate(reader, start=1):
            if header is None:
                if any(cell.strip() for cell in record):
                    header = [cell.strip() for cell in record]
                continue
            if any(cell.strip() for cell in record):
                body.append((number, record))
                if len(body) > MAX_ROWS:
                    raise UnreadableFile(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    except csv.Error as exc:
        raise UnreadableFile(f"The file is not valid CSV at row {number + 1} ({exc}); was it cut off?") from None
    if header is None:
        raise UnreadableFile("The file has no header row.")
    if not body:
        raise UnreadableFile("The file has a header but no data rows.")
    return header, body


def _norm(header: str) -> str:
    return " ".join(header.lower().replace("_", " ").replace("-", " ").split())


def _roles(header: list[str]) -> dict[str, int]:
    """Column index per role; for the time, the most specific name wins ("collected at" over "date")."""
    found: dict[str, int] = {}
    names = [_norm(cell) for cell in header]
    for role, candidates in _ROLES.items():
        for candidate in candidates:
            if candidate in names:
                found.setdefault(role, names.index(candidate))
                if role == "time":
                    break
    return found


def _split_unit(header: str) -> tuple[str, str] | None:
    """'Glucose (mg/dL)' -> ('Glucose', 'mg/dL'); brackets inside the unit, as in 'mm[Hg]', are kept."""
    header = header.strip()
    if not header or header[-1] not in ")]":
        return None
    close = header[-1]
    opening = "(" if close == ")" else "["
    depth = 0
    for index in range(len(header) - 1, -1, -1):
        depth += header[index] == close
        depth -= header[index] == opening
        if depth == 0:
            return header[:index].strip(), header[index + 1 : -1].strip()
    return None


def _number(text: str, *, thousands: bool) -> float | None:
    text = text.strip()
    if thousands and _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _not_a_number(text: str) -> str:
    reason = f"{text.strip()!r} is not a number"
    if "," in text:
        return reason + " (use a point as the decimal separator)."
    if text.strip()[:1] in "<>":
        return reason + " (a result beyond a detection limit cannot be stored as a number)."
    return reason + "."


class _Reader:
    """Reads rows of one file; collects values and problems into a Plan."""

    def __init__(self, header, roles, *, lookup, tz, now, default_mrn, thousands):
        self.header, self.roles, self.lookup = header, roles, lookup
        self.tz, self.now, self.default_mrn = tz, now, default_mrn
        self.thousands = thousands  # a comma in a number may group thousands (comma-separated files only)
        self.today = now.astimezone(tz).date()
        self.time_column = header[roles["time"]]

    def _find(self, name: str) -> tuple[AnalyteSpec, str] | None:
        """The analyte a header names, and the unit it gives, trying code, LOINC, name, alias and synonyms."""
        candidates = [(name, "")]
        split = _split_unit(name)
        if split and split[0]:
            candidates.append(split)
        for candidate, unit in candidates:
            for key in (candidate, candidate.replace("_", " "), candidate.replace(" ", "_")):
                spec = self.lookup.get(key)
                if spec is not None:
                    return spec, unit
            synonym = _HEADER_SYNONYMS.get(_norm(candidate))
            if synonym and (spec := self.lookup.get(synonym[0])) is not None:
                return spec, unit or synonym[1]
        return None

    def _cells(self, number: int, record: list[str], problems: list[Problem]) -> list[str] | None:
        width = len(self.header)
        if len(record) < width:
            problems.append(
                Problem(number, "", "", f"The row has {len(record)} cells; the header has {width}. Was it cut off?")
            )
            return None
        if any(cell.strip() for cell in record[width:]):
            problems.append(Problem(number, "", "", f"The row has {len(record)} cells; the header has {width}."))
            return None
        return record

    def _mrn(self, number: int, cells: list[str], plan: Plan) -> str | None:
        index = self.roles.get("mrn")
        value = (cells[index].strip() if index is not None else "") or self.default_mrn
        if not value:
            plan.problems.append(Problem(number, self.header[index] if index is not None else "mrn", "", "No MRN."))
            return None
        plan.mrns[number] = value
        return value

    def _when(self, number: int, text: str, problems: list[Problem]) -> datetime.date | datetime.datetime | None:
        text = text.strip()
        try:
            when: datetime.date | datetime.datetime = datetime.date.fromisoformat(text)
            future = when > self.today
        except ValueError:
            try:
                when = datetime.datetime.fromisoformat(text)
            except ValueError:
                reason = f"{text!r} is not an ISO 8601 date or time (for example 2026-03-01 or 2026-03-01T09:30)."
                if _TIME_OF_DAY.fullmatch(text):
                    reason = f"{text!r} is a time of day without a date."
                problems.append(Problem(number, self.time_column, text, reason if text else "No date or time."))
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=self.tz)
            future = when > self.now + FUTURE_TOLERANCE
        if future:
            problems.append(Problem(number, self.time_column, text, "Results cannot be dated in the future."))
            return None
        return when

    def _at(self, when: datetime.date | datetime.datetime, spec: AnalyteSpec) -> datetime.datetime:
        if isinstance(when, datetime.datetime):
            return when
        day_time = WEARABLE_DAY_TIME if spec.kind == "wearable" else datetime.time(0, 0)
        return datetime.datetime.combine(when, day_time, tzinfo=self.tz)

    def _value(
        self,
        row: tuple[int, str, datetime.date | datetime.datetime],
        spec: AnalyteSpec,
        column: str,
        raw: str,
        unit: str,
    ) -> PlannedValue | Problem:
        number, mrn, when = row
        if not raw.strip():
            return Problem(number, column, "", "No value.")
        value = _number(raw, thousands=self.thousands)
        if value is None:
            return Problem(number, column, raw, _not_a_number(raw))
        code = unit_resolve(spec, unit)
        if code is None:
            accepted = ", ".join(accepted_units(spec))
            return Problem(number, column, unit, f"{spec.name} cannot be given in {unit}; accepted units: {accepted}.")
        try:
            canonical = check_plausible(spec, value, code)
        except InvalidValue as exc:
            return Problem(number, column, raw, str(exc))
        return PlannedValue(number, mrn, spec.code, canonical, value, code, self._at(when, spec))

    def _add(self, plan: Plan, outcome: PlannedValue | Problem) -> None:
        if isinstance(outcome, Problem):
            plan.problems.append(outcome)
        else:
            plan.values.append(outcome)

    def _row_start(self, plan: Plan, number: int, record: list[str]):
        """Cells, MRN and time of a row, or None when the row is bad as a whole."""
        plan.rows += 1
        cells = self._cells(number, record, plan.problems)
        if cells is None:
            return None
        mrn = self._mrn(number, cells, plan)
        when = self._when(number, cells[self.roles["time"]], plan.problems)
        return (cells, (number, mrn, when)) if mrn and when else None

    def read_long(self, body: list[tuple[int, list[str]]]) -> Plan:
        plan = Plan(format="long", time_column=self.time_column)
        analyte_columns = [
            index for index, name in enumerate(self.header) if _norm(name) in _ROLES["analyte"]
        ]  # every code-like column: a row may give its code in one and leave another empty
        used = {*self.roles.values(), *analyte_columns}
        plan.unknown_columns = [name for index, name in enumerate(self.header) if index not in used and name]
        unknown_codes: dict[str, None] = {}
        for number, record in body:
            started = self._row_start(plan, number, record)
            if started is None:
                continue
            cells, row = started
            index = next((i for i in analyte_columns if cells[i].strip()), analyte_columns[0])
            key, column = cells[index].strip(), self.header[index]
            spec = self.lookup.get(key) if key else None
            if spec is None:
                reason = f"Unknown analyte {key!r}: not a code, LOINC code or name in the catalog."
                plan.problems.append(Problem(number, column, key, reason if key else "No analyte code."))
                if key:
                    unknown_codes.setdefault(key)
                continue
            unit = cells[self.roles["unit"]] if "unit" in self.roles else ""
            value_column = self.header[self.roles["value"]]
            self._add(plan, self._value(row, spec, value_column, cells[self.roles["value"]], unit))
        plan.unknown_codes = list(unknown_codes)
        return plan

    def _wide_columns(self, plan: Plan) -> list[tuple[int, AnalyteSpec, str, int | None]]:
        """(column, analyte, unit from the header, index of its unit column) for each analyte column."""
        role_columns = set(self.roles.values())
        found: dict[int, tuple[AnalyteSpec, str]] = {}
        unit_columns: dict[int, str] = {}  # index -> the header it gives units for, without " unit"
        for index, name in enumerate(self.header):
            if index in role_columns or not name:
                continue
            match = self._find(name)
            if match:
                found[index] = match
            elif (base := re.sub(r"[\s_-]+units?$", "", name, flags=re.IGNORECASE)) != name:
                unit_columns[index] = base
        codes_seen: dict[str, str] = {}
        columns = []
        for index, (spec, unit) in found.items():
            if spec.code in codes_seen:
                raise UnreadableFile(
                    f"Columns {codes_seen[spec.code]!r} and {self.header[index]!r} both give {spec.name}."
                )
            codes_seen[spec.code] = self.header[index]
            unit_column = next(
                (i for i, base in unit_columns.items() if (m := self._find(base)) and m[0].code == spec.code), None
            )
            columns.append((index, spec, unit, unit_column))
        used = role_columns | set(found) | {c[3] for c in columns if c[3] is not None}
        plan.unknown_columns = [name for index, name in enumerate(self.header) if index not in used and name]
        plan.columns = {self.header[index]: spec.code for index, spec, _, _ in columns}
        return columns

    def read_wide(self, body: list[tuple[int, list[str]]]) -> Plan:
        plan = Plan(format="wide", time_column=self.time_column)
        columns = self._wide_columns(plan)
        if not columns:
            names = ", ".join(name for name in self.header if name)
            raise UnreadableFile(
                f"No column names a known analyte (columns: {names}). Name columns by analyte code, LOINC code "
                "or name, or use a long file with columns mrn, analyte, value, unit and time."
            )
        if all(spec.kind == "wearable" for _, spec, _, _ in columns):
            plan.format = "wearable"
        row_unit = self.roles.get("unit")
        for number, record in body:
            started = self._row_start(plan, number, record)
            if started is None:
                continue
            cells, row = started
            for index, spec, header_unit, unit_column in columns:
                raw = cells[index]
                if raw.strip().lower() in _MISSING:
                    continue
                unit = header_unit or next(
                    (cells[i].strip() for i in (unit_column, row_unit) if i is not None and cells[i].strip()), ""
                )
                self._add(plan, self._value(row, spec, self.header[index], raw, unit))
        return plan
