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
_PROPERTY = "reliability"  # the key of a report's cases (user_properties) and of a worker's collected ones


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
    """Carry the test's cases on its report: with pytest-xdist the report, not the item, reaches the controller."""
    report = yield
    marks = list(_marks(item))
    if marks:
        report.user_properties.append((_PROPERTY, marks))
    return report


def pytest_runtest_logreport(report):
    marks = next((value for name, value in report.user_properties if name == _PROPERTY), None)
    if not marks:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed") or report.failed:
        for case, tried in marks:
            key = (report.nodeid, case)
            previous = _rows.get(key)
            if previous is None or previous.outcome == "passed":
                _rows[key] = Row(case=case, tried=tried, outcome=report.outcome, test=report.nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist controller: the marked tests a worker collected (only workers collect)."""
    _expected.update(tuple(pair) for pair in node.workeroutput.get(_PROPERTY, []))


def _full_run(session) -> bool:
    """True when pytest ran the configured test paths with no selection (what `make test` does)."""
    config = session.config
    selected = config.getoption("keyword") or config.getoption("markexpr") or config.getoption("collectonly")
    return not selected and sorted(config.args) == sorted(config.getini("testpaths"))


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # a pytest-xdist worker: its controller writes the report
        session.config.workeroutput[_PROPERTY] = sorted(_expected)
        return
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
