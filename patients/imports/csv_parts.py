"""A lab CSV file too large for one import, cut into parts an import job imports one by one.

Each part is the file's header and up to `PART_ROWS` of its records (at most about `PART_BYTES`), written back
with the file's own delimiter; the records are read with the csv module, so a quoted value holding a line break
stays in one record. Each part says at which row of the file its first record was, so that the problems and
critical values of a part's report name the file's rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from patients.imports.csv_labs import MAX_BYTES, UnreadableFile, delimiter_of

PART_ROWS = 50_000
PART_BYTES = MAX_BYTES // 2


def _delimiter(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = next((line for line in handle if line.strip()), "")
    return delimiter_of(first)


def csv_parts(path: Path) -> Iterator[tuple[int, bytes]]:
    """(the file's row of the part's first record, the part as CSV bytes). Raises UnreadableFile."""
    delimiter = _delimiter(path)
    header: list[str] | None = None
    records: list[list[str]] = []
    size, first_row, number = 0, 0, 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, record in enumerate(csv.reader(handle, delimiter=delimiter, strict=True), start=1):
                if header is None:
                    header = record if any(cell.strip() for cell in record) else None
                    continue
                if not records:
                    first_row = number
                records.append(record)
                size += sum(len(cell) + 1 for cell in record)
                if len(records) >= PART_ROWS or size >= PART_BYTES:
                    yield first_row, _written(header, records, delimiter)
                    records, size = [], 0
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"The file is not UTF-8 text (undecodable byte near row {number + 1}).") from exc
    except csv.Error as exc:
        raise UnreadableFile(f"The file is not valid CSV at row {number + 1} ({exc}).") from None
    if header is None:
        raise UnreadableFile("The file has no header row.")
    if records:
        yield first_row, _written(header, records, delimiter)


def _written(header: list[str], records: list[list[str]], delimiter: str) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return text.getvalue().encode()


def rows_shift(summary: dict, first_row: int) -> dict:
    """A part's report summary with its rows as the file's (the part's header is its row 1, its first record 2)."""
    offset = first_row - 2
    for key in ("problems", "critical"):
        summary[key] = [{**item, "row": item["row"] + offset if item.get("row") else item.get("row")}
                        for item in summary[key]]  # fmt: skip
    return summary
