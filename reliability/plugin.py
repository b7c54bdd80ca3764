"""pytest plugin: collect the outcome of every test marked `reliability(case, tried)` and write the report.

The report (docs/RELIABILITY.md) is rewritten only after a run in which every case had a test and every marked
test ran to its result, none skipped, i.e. a full run with PostgreSQL, Redis, real workers and Chromium (CI); a
run stopped early (`-x`, `--maxfail`, Ctrl-C) leaves it alone. A full run that leaves a case without any test
fails, so a case cannot silently lose its proof.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.cases import CASE_NUMBERS
from reliability.report import Row, render

REPORT = Path(__file__).resolve().parent.parent / "docs" / "RELIABILITY.md"
ENVIRONMENT = "PostgreSQL, Redis, real Celery worker processes and Chromium, as in CI"

_rows: dict[tuple[str, int], Row] = {}
_expected: set[tuple[str, int]] = set()  # (test, case) of every marked test collected


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability(case, tried): the test proves case CASE of docs/RELIABILITY.md by trying TRIED"
    )


def _marks(item):
    for mark in item.iter_markers("reliability"):
        case, tried = mark.args if mark.args else (mark.kwargs["case"], mark.kwargs["tried"])
        if case not in CASE_NUMBERS:
            raise pytest.UsageError(f"{item.nodeid}: reliability case {case} is not in reliability/cases.py")
        yield case, tried


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        for case, _ in _marks(item):
            _expected.add((item.nodeid, case))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed") or report.failed:
        for case, tried in _marks(item):
            key = (item.nodeid, case)
            previous = _rows.get(key)
            if previous is None or previous.outcome == "passed":
                _rows[key] = Row(case=case, tried=tried, outcome=report.outcome, test=item.nodeid)
    return report


def _full_run(session) -> bool:
    """True when pytest ran the configured test paths with no selection (what `make test` does)."""
    config = session.config
    selected = config.getoption("keyword") or config.getoption("markexpr") or config.getoption("collectonly")
    return not selected and sorted(config.args) == sorted(config.getini("testpaths"))


def pytest_sessionfinish(session, exitstatus):
    if not _full_run(session):
        return
    missing = sorted(CASE_NUMBERS - {case for _, case in _expected})
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if missing:
        if reporter:
            reporter.write_line(f"reliability: no test proves case(s) {missing}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    reason = withheld_because(_expected, _rows)
    if reason:
        if reporter:
            reporter.write_line(f"reliability: {REPORT.name} not rewritten, {reason}")
        return
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(render(list(_rows.values()), environment=ENVIRONMENT))
    if reporter:
        reporter.write_line(f"reliability: wrote {REPORT} ({len(_rows)} results for {len(CASE_NUMBERS)} cases)")


def withheld_because(expected: set[tuple[str, int]], rows: dict[tuple[str, int], Row]) -> str:
    """Why this run's results must not replace the report ("" when they may)."""
    unreported = expected - set(rows)
    if unreported:
        return f"the run stopped before {len(unreported)} marked test(s) ran"
    skipped = sorted({row.case for row in rows.values() if row.outcome == "skipped"})
    if skipped:
        return f"case(s) {skipped} skipped (no services)"
    return ""
