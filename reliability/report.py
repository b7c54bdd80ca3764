"""Render the reliability report and the hazard log from the outcomes of one test run. Pure: no pytest, no Django."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reliability.cases import CASES
from reliability.hazards import HAZARDS

OUTCOME_WORDS = {"passed": "holds", "failed": "**FAILED**", "skipped": "skipped"}


@dataclass(frozen=True)
class Row:
    entry: int | str  # the reliability case's number or the hazard's id
    tried: str
    outcome: str  # passed, failed or skipped
    test: str  # pytest node id


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _by_entry(rows: list[Row], entries: Sequence[int | str]) -> dict[int | str, list[Row]]:
    return {entry: sorted((r for r in rows if r.entry == entry), key=lambda r: r.test) for entry in entries}


def _result(rows: list[Row]) -> str:
    held = sum(r.outcome == "passed" for r in rows)
    return "holds" if rows and held == len(rows) else f"**{held} of {len(rows)} hold**"


def _tried_cells(row: Row) -> str:
    """The last three cells of a test's line: what it tried, its result, its node id."""
    return f"{_cell(row.tried)} | {OUTCOME_WORDS.get(row.outcome, row.outcome)} | `{_cell(row.test)}` |"


def _preamble(title: str, *, ran: str, environment: str) -> list[str]:
    """The title and the warning that the run writes the file, with RELIABILITY.md's line breaks."""
    return [
        f"# {title}",
        "",
        f"Written by the test suite (`reliability/plugin.py`) after a run in which {ran} ran and none was",
        f"skipped: {environment}. Do not edit by hand; `CI=true .ci/run` rewrites it.",
        "",
    ]


def reliability_report(rows: list[Row], *, environment: str) -> str:
    """docs/RELIABILITY.md: a summary per case, then one line per test that tried it."""
    by_case = _by_entry(rows, [case.number for case in CASES])
    lines = [
        *_preamble("Reliability and security", ran="every case below", environment=environment),
        "| # | Case | Tests | Result |",
        "|---|------|-------|--------|",
    ]
    for case in CASES:
        case_rows = by_case[case.number]
        lines.append(f"| {case.number} | {_cell(case.claim)} | {len(case_rows)} | {_result(case_rows)} |")
    for group in dict.fromkeys(case.group for case in CASES):
        lines += ["", f"## {group}", "", "| # | What was tried | Result | Test |", "|---|---|---|---|"]
        for case in (c for c in CASES if c.group == group):
            lines += [f"| {case.number} | {_tried_cells(row)}" for row in by_case[case.number]]
    return "\n".join(lines) + "\n"


SAFETY_INTRO = (
    "This is the platform's clinical hazard log, kept in the manner of ISO 14971 and NHS DCB0129 (the hazards are "
    "listed in `reliability/hazards.py`). Each hazard is a way the software could contribute to harm to a patient; "
    "beside it stand what could cause it, how the software controls it (naming the code that does), and the tests "
    "that try the cause and check that the control holds. **holds** means every test listed for the hazard passed "
    "in the last full test run (as in CI); **n of m hold** means a test failed, and the control must be treated as "
    "not in place until it is fixed. Under each hazard, every test is listed with what it tried. A full run in which "
    "a hazard has no test fails, so no hazard can silently lose its evidence. The log shows what the software does; "
    "judging the residual risk and accepting it is the Clinical Safety Officer's work, outside this file."
)


def safety_report(rows: list[Row], *, environment: str) -> str:
    """docs/SAFETY.md: how to read it, a summary per hazard, then the tests of each hazard."""
    by_hazard = _by_entry(rows, [hazard.id for hazard in HAZARDS])
    lines = [
        *_preamble("Clinical safety: hazard log", ran="every test below", environment=environment),
        SAFETY_INTRO,
        "",
        "| Id | Hazard | Causes | Control in the software | Tests | Result |",
        "|----|--------|--------|-------------------------|-------|--------|",
    ]
    for hazard in HAZARDS:
        tests = by_hazard[hazard.id]
        causes, controls = _cell("; ".join(hazard.causes)), _cell("; ".join(hazard.controls))
        lines.append(
            f"| {hazard.id} | {_cell(hazard.hazard)} | {causes} | {controls} | {len(tests)} | {_result(tests)} |"
        )
    for hazard in HAZARDS:
        lines += ["", f"## {hazard.id} {_cell(hazard.hazard)}", "", "| What the test tried | Result | Test |"]
        lines += ["|---|---|---|", *(f"| {_tried_cells(row)}" for row in by_hazard[hazard.id])]
    return "\n".join(lines) + "\n"
