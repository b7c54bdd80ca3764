"""Render the reliability report from the outcomes of one test run. Pure: no pytest, no Django."""

from __future__ import annotations

from dataclasses import dataclass

from reliability.cases import CASES

OUTCOME_WORDS = {"passed": "holds", "failed": "**FAILED**", "skipped": "skipped"}


@dataclass(frozen=True)
class Row:
    case: int
    tried: str
    outcome: str  # passed, failed or skipped
    test: str  # pytest node id


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render(rows: list[Row], *, environment: str) -> str:
    """The report as Markdown: a summary per case, then one line per test that tried it."""
    by_case = {case.number: sorted((r for r in rows if r.case == case.number), key=lambda r: r.test) for case in CASES}
    lines = [
        "# Reliability and security",
        "",
        "Written by the test suite (`reliability/plugin.py`) after a run in which every case below ran and none was",
        f"skipped: {environment}. Do not edit by hand; `CI=true .ci/run` rewrites it.",
        "",
        "| # | Case | Tests | Result |",
        "|---|------|-------|--------|",
    ]
    for case in CASES:
        case_rows = by_case[case.number]
        held = sum(r.outcome == "passed" for r in case_rows)
        result = "holds" if case_rows and held == len(case_rows) else f"**{held} of {len(case_rows)} hold**"
        lines.append(f"| {case.number} | {_cell(case.claim)} | {len(case_rows)} | {result} |")
    for group in dict.fromkeys(case.group for case in CASES):
        lines += ["", f"## {group}", "", "| # | What was tried | Result | Test |", "|---|---|---|---|"]
        for case in (c for c in CASES if c.group == group):
            for row in by_case[case.number]:
                word = OUTCOME_WORDS.get(row.outcome, row.outcome)
                lines.append(f"| {case.number} | {_cell(row.tried)} | {word} | `{_cell(row.test)}` |")
    return "\n".join(lines) + "\n"
